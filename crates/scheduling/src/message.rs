//! What the scheduler tells users, worded as kube-scheduler (1.32) words it: the
//! `FailedScheduling` message (`FitError.Error()`), preemption's part of it, the
//! `Preempted` event on victims, and the pod conditions it writes.
//!
//! `FitError.Error()` is `"0/<nodes> nodes are available:"`, then — when any node
//! reported reasons — `" <histogram>."`, then — when preemption (the PostFilter) said
//! something — `" <postfilter message>"`. The histogram counts each reason over the
//! nodes, renders `"<count> <reason>"`, and sorts those strings as plain strings (so
//! `"10 …"` sorts before `"2 …"`, exactly as Go's `sort.Strings` leaves them), joined
//! by `", "`. Preemption's message is prefixed `"preemption: "` and is either an
//! eligibility sentence or a nested `FitError` over the nodes preemption looked at, where
//! nodes it did not try count as `"Preemption is not helpful for scheduling"`.

use serde_json::{json, Value};

use super::filter::Reason;

/// When the cluster has no node at all (not a `FitError`: no histogram, no preemption).
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";
/// A node holding no pod of lower priority than the preemptor.
pub const NO_PREEMPTION_VICTIMS: &str = "No preemption victims found for incoming pod";
/// A node rejected for a reason eviction cannot change (selector, taint, cordon).
pub const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NOT_ELIGIBLE_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
pub const NOT_ELIGIBLE_TERMINATING: &str =
    "not eligible due to a terminating pod on the nominated node.";
pub const PREEMPTION_PREFIX: &str = "preemption: ";

pub const EVENT_FAILED_SCHEDULING: &str = "FailedScheduling";
pub const EVENT_SCHEDULED: &str = "Scheduled";
pub const EVENT_PREEMPTED: &str = "Preempted";
/// The `action` of the `Preempted` event (events.k8s.io/v1).
pub const ACTION_PREEMPTING: &str = "Preempting";
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// One histogram entry: a filter reason or one of preemption's per-node sentences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Filter(Reason),
    Text(&'static str),
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Filter(r) => r.fmt(f),
            Entry::Text(t) => f.write_str(t),
        }
    }
}

/// Reason counts over nodes (`framework.Diagnosis` / `NodeToStatus`). Few distinct
/// reasons occur, so a short vector with linear search beats a map, and counting a
/// reason already present allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    entries: Vec<(Entry, usize)>,
}

impl Histogram {
    pub fn add_reason(&mut self, reason: &Reason) {
        self.add_reason_n(reason, 1);
    }

    pub fn add_reason_n(&mut self, reason: &Reason, n: usize) {
        if n == 0 {
            return;
        }
        match self
            .entries
            .iter_mut()
            .find(|(e, _)| matches!(e, Entry::Filter(r) if r == reason))
        {
            Some((_, count)) => *count += n,
            None => self.entries.push((Entry::Filter(reason.clone()), n)),
        }
    }

    pub fn add_text(&mut self, text: &'static str, n: usize) {
        if n == 0 {
            return;
        }
        match self
            .entries
            .iter_mut()
            .find(|(e, _)| matches!(e, Entry::Text(t) if *t == text))
        {
            Some((_, count)) => *count += n,
            None => self.entries.push((Entry::Text(text), n)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn count(&self, entry: &Entry) -> usize {
        self.entries
            .iter()
            .find(|(e, _)| e == entry)
            .map_or(0, |(_, n)| *n)
    }

    /// `"<count> <reason>"` strings, sorted as Go's `sort.Strings` sorts them.
    pub fn sorted(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .iter()
            .map(|(e, n)| format!("{n} {e}"))
            .collect();
        out.sort();
        out
    }
}

/// `FitError.Error()`: the `FailedScheduling` event message and the `PodScheduled`
/// condition message.
pub fn fit_error_message(
    num_nodes: usize,
    histogram: &Histogram,
    post_filter: Option<&str>,
) -> String {
    let mut message = format!("0/{num_nodes} nodes are available:");
    if !histogram.is_empty() {
        message.push(' ');
        message.push_str(&histogram.sorted().join(", "));
        message.push('.');
    }
    if let Some(post) = post_filter.filter(|p| !p.is_empty()) {
        message.push(' ');
        message.push_str(post);
    }
    message
}

/// The `Preempted` event's message on each victim.
pub fn preempted_event_message(preemptor_uid: &str, node: &str) -> String {
    format!("Preempted by pod {preemptor_uid} on node {node}")
}

/// The `Scheduled` event's message on a bound pod.
pub fn scheduled_event_message(namespace: &str, name: &str, node: &str) -> String {
    format!("Successfully assigned {namespace}/{name} to {node}")
}

/// `PodScheduled=False` with reason `Unschedulable`, written on a pod that did not fit.
pub fn unschedulable_condition(message: &str, now: &str) -> Value {
    json!({
        "type": "PodScheduled",
        "status": "False",
        "lastProbeTime": null,
        "lastTransitionTime": now,
        "reason": "Unschedulable",
        "message": message,
    })
}

/// `DisruptionTarget=True` with reason `PreemptionByScheduler`, patched onto a victim's
/// status before it is deleted; it is also how a later cycle knows the victim is leaving
/// because of preemption (see [`super::PodRequirements::terminating_by_preemption`]).
pub fn disruption_target_condition(now: &str) -> Value {
    json!({
        "type": "DisruptionTarget",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": now,
        "reason": "PreemptionByScheduler",
        "message": format!("{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn cpu() -> Reason {
        Reason::Insufficient(Cow::Borrowed("cpu"))
    }

    #[test]
    fn fit_error_wording() {
        let mut h = Histogram::default();
        h.add_reason(&cpu());
        assert_eq!(
            fit_error_message(1, &h, None),
            "0/1 nodes are available: 1 Insufficient cpu."
        );

        let mut h = Histogram::default();
        h.add_reason(&Reason::NodeAffinity);
        h.add_reason(&Reason::Insufficient(Cow::Borrowed("memory")));
        h.add_reason(&Reason::NodeAffinity);
        assert_eq!(
            fit_error_message(3, &h, None),
            "0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node affinity/selector."
        );

        let mut h = Histogram::default();
        h.add_reason(&Reason::UntoleratedTaint {
            key: "key".into(),
            value: "value".into(),
        });
        assert_eq!(
            fit_error_message(1, &h, None),
            "0/1 nodes are available: 1 node(s) had untolerated taint {key: value}."
        );
    }

    #[test]
    fn preemption_suffixes() {
        let mut h = Histogram::default();
        h.add_reason(&cpu());
        let mut p = Histogram::default();
        p.add_text(NO_PREEMPTION_VICTIMS, 1);
        let post = format!("{PREEMPTION_PREFIX}{}", fit_error_message(1, &p, None));
        assert_eq!(
            fit_error_message(1, &h, Some(&post)),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
        let mut p = Histogram::default();
        p.add_text(PREEMPTION_NOT_HELPFUL, 1);
        let post = format!("{PREEMPTION_PREFIX}{}", fit_error_message(1, &p, None));
        assert_eq!(
            fit_error_message(1, &h, Some(&post)),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        let never = format!("{PREEMPTION_PREFIX}{NOT_ELIGIBLE_NEVER}");
        assert_eq!(
            fit_error_message(1, &h, Some(&never)),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
        );
    }

    #[test]
    fn counts_sort_as_strings_like_go() {
        let mut h = Histogram::default();
        h.add_reason_n(&Reason::NodeAffinity, 2);
        h.add_reason_n(&cpu(), 10);
        h.add_text(PREEMPTION_NOT_HELPFUL, 0);
        assert_eq!(
            fit_error_message(12, &h, None),
            "0/12 nodes are available: 10 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
        );
        assert_eq!(h.count(&Entry::Filter(cpu())), 10);
        assert_eq!(
            fit_error_message(0, &Histogram::default(), None),
            "0/0 nodes are available:"
        );
    }

    #[test]
    fn events_and_conditions() {
        assert_eq!(
            preempted_event_message("1234-abcd", "node-1"),
            "Preempted by pod 1234-abcd on node node-1"
        );
        assert_eq!(
            scheduled_event_message("ns", "p", "n"),
            "Successfully assigned ns/p to n"
        );
        let c = disruption_target_condition("2025-01-01T00:00:00Z");
        assert_eq!(c["reason"], "PreemptionByScheduler");
        assert_eq!(
            c["message"],
            "default-scheduler: preempting to accommodate a higher priority pod"
        );
        assert_eq!(unschedulable_condition("m", "t")["reason"], "Unschedulable");
    }
}
