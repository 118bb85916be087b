//! `sparkyard ec2 send-spot-interruption`: a client of a running server's EC2 API, as
//! `sparkyard runs` is of its emr-containers API. `--node-name` is resolved with
//! `DescribeInstances` (filter `private-dns-name`), then `SendSpotInstanceInterruptions`
//! gives the instance its two-minute notice (docs/autoscaling.md, "Spot interruptions").

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::jobs_cli::{server_config, urlencode, EmrClient, ServerArgs};

#[derive(Subcommand, Debug)]
pub enum Ec2Command {
    /// Give a Spot instance the two-minute interruption notice; it is terminated when the
    /// notice runs out (Karpenter drains it meanwhile).
    SendSpotInterruption {
        /// The instance (`i-…`).
        #[arg(
            long,
            required_unless_present = "node_name",
            conflicts_with = "node_name"
        )]
        instance_id: Option<String>,
        /// The instance's node (`ip-192-168-…`).
        #[arg(long)]
        node_name: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn run(command: Ec2Command) -> anyhow::Result<()> {
    let Ec2Command::SendSpotInterruption {
        instance_id,
        node_name,
        server,
    } = command;
    let config = server_config(&server)?;
    let api = EmrClient::new(&config.data_dir)?;
    let id = match (instance_id, node_name) {
        (Some(id), _) => id,
        (None, Some(node)) => instance_of_node(&api, &node).await?,
        (None, None) => bail!("give --instance-id or --node-name"),
    };
    let body = query(
        &api,
        &[
            ("Action", "SendSpotInstanceInterruptions"),
            ("InstanceId.1", &id),
        ],
    )
    .await?;
    let at = between(&body, "<interruptionTime>", "</interruptionTime>").unwrap_or("?");
    println!("{id}: spot interruption notice sent; terminated at {at}");
    Ok(())
}

async fn instance_of_node(api: &EmrClient, node: &str) -> anyhow::Result<String> {
    let body = query(
        api,
        &[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "private-dns-name"),
            ("Filter.1.Value.1", node),
        ],
    )
    .await?;
    between(&body, "<instanceId>", "</instanceId>")
        .map(str::to_string)
        .with_context(|| format!("no instance has node name {node}"))
}

/// One EC2 query-protocol call; an `<Error>` becomes `Code: Message`.
async fn query(api: &EmrClient, params: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut form: Vec<String> = vec!["Version=2016-11-15".into()];
    form.extend(params.iter().map(|(k, v)| format!("{k}={}", urlencode(v))));
    let (status, text) = api
        .send(
            "ec2",
            "POST",
            "/",
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            form.join("&").into_bytes(),
        )
        .await?;
    if !status.is_success() {
        let code = between(&text, "<Code>", "</Code>").unwrap_or("Error");
        let message = between(&text, "<Message>", "</Message>").unwrap_or(&text);
        bail!("{code}: {message}");
    }
    Ok(text)
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}
