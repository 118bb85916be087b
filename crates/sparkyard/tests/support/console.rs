//! The web console from tests: its address, raw HTTP with a session cookie (what a browser
//! would never send: no session, forged tokens), access-key sign-in through the real form,
//! and Debian's chromium driven by playwright-core (`tests/console/*.mjs`).
//!
//! The browser needs `scripts/setup.sh` (chromium, node, `tests/console/node_modules`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Server;

/// The console's base URL (`http://127.0.0.1:<port>`), from `<data-dir>/console.addr`.
pub fn base(s: &Server) -> String {
    format!(
        "http://{}",
        std::fs::read_to_string(s.data_dir.path().join("console.addr"))
            .expect("serve wrote console.addr before listening")
            .trim()
    )
}

/// `sparkyard console --url`: a fresh one-time sign-in link for the administrator.
pub fn signin_link(s: &Server) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .args(["console", "--url", "--data-dir"])
        .arg(s.data_dir.path())
        .output()
        .expect("run sparkyard console");
    assert!(
        out.status.success(),
        "sparkyard console --url: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// node, chromium and playwright-core, or a message saying how to get them.
pub struct BrowserTools {
    pub node: PathBuf,
    pub chromium: PathBuf,
    pub dir: PathBuf,
}

impl BrowserTools {
    pub fn find() -> BrowserTools {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
        let chromium = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        assert!(
            chromium.exists(),
            "no chromium at {} (set CHROMIUM, or run scripts/setup.sh)",
            chromium.display()
        );
        assert!(
            dir.join("node_modules/playwright-core/package.json")
                .exists(),
            "playwright-core is not installed in {} (run scripts/setup.sh)",
            dir.display()
        );
        BrowserTools {
            node: PathBuf::from("node"),
            chromium,
            dir,
        }
    }

    /// Runs `tests/console/<script>` with `env` (plus CHROMIUM and SCREENSHOTS =
    /// `docs/console/`); it must print `ok`. `server_log` goes into the failure message.
    pub fn run(&self, script: &str, env: &[(&str, String)], server_log: impl Fn() -> String) {
        let screenshots = super::repo_root().join("docs/console");
        std::fs::create_dir_all(&screenshots).unwrap();
        let out = Command::new(&self.node)
            .arg(self.dir.join(script))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("SCREENSHOTS", &screenshots)
            .env("CHROMIUM", &self.chromium)
            .output()
            .expect("run node");
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
            "browser run of {script} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            server_log()
        );
    }
}

/// Raw HTTP to the console: status, `Set-Cookie` session value, `Location`, body.
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

pub struct Answer {
    pub status: u16,
    pub session: Option<String>,
    /// The sign-in form's pre-session cookie, when one was set.
    pub pre: Option<String>,
    pub location: String,
    pub body: String,
}

fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_string))
        .map(|v| v.split(';').next().unwrap().to_string())
        .filter(|v| !v.is_empty())
}

impl Http {
    pub fn new(base: &str) -> Http {
        Http {
            runtime: tokio::runtime::Runtime::new().unwrap(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_string(),
        }
    }

    /// `cookie` is the session's value (`sparkyard_console=…`), or a whole `Cookie` header
    /// when it contains `=`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> Answer {
        self.send_with(method, path, cookie, form, &[])
    }

    /// [`Http::send`] with extra request headers (`Origin` of another site).
    pub fn send_with(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.client.request(method.parse().unwrap(), url);
        if let Some(c) = cookie {
            let header = if c.contains('=') {
                c.to_string()
            } else {
                format!("sparkyard_console={c}")
            };
            request = request.header("cookie", header);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(f) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(f.to_string());
        }
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let session = set_cookie(&response, "sparkyard_console");
            let pre = set_cookie(&response, "sparkyard_console_pre");
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = response.text().await.unwrap();
            Answer {
                status,
                session,
                pre,
                location,
                body,
            }
        })
    }

    /// Signs in through the access-key form (its anti-forgery token and pre-session
    /// cookie included); the session cookie's value.
    pub fn sign_in_with_key(&self, key_id: &str, secret: &str, token: Option<&str>) -> String {
        let form = self.send("GET", "/signin", None, None);
        assert_eq!(form.status, 200, "{}", form.body);
        let pre = form
            .pre
            .expect("the sign-in form sets its pre-session cookie");
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let body = format!(
            "csrf={}&access_key_id={}&secret_access_key={}&session_token={}",
            csrf_of(&form.body),
            enc(key_id),
            enc(secret),
            enc(token.unwrap_or_default())
        );
        let r = self.send(
            "POST",
            "/signin",
            Some(&format!("sparkyard_console_pre={pre}")),
            Some(&body),
        );
        assert_eq!(r.status, 200, "access-key sign-in: {}", r.body);
        r.session.expect("a signed-in session cookie")
    }
}

/// The first form's CSRF token in a page.
pub fn csrf_of(body: &str) -> String {
    let start = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].to_string()
}
