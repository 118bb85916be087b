//! The shared policy's kube-scheduler: one pass over the pods that may now fit, in
//! queue order, with preemption, and what an unschedulable pod asks of Karpenter.

use super::*;

impl Sim<'_> {
    /// One pass of kube-scheduler over the pods that may now fit, in queue order.
    pub(super) fn scheduling_pass(&mut self) {
        let mut order: Vec<usize> = if self.retry_all {
            self.pending.iter().copied().collect()
        } else {
            let mut f: Vec<usize> = self
                .fresh
                .iter()
                .copied()
                .filter(|s| self.pending.contains(s))
                .collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        self.retry_all = false;
        self.fresh.clear();
        if order.is_empty() {
            return;
        }
        order.sort_by(|&a, &b| queue_order(&self.pod(a).req, &self.pod(b).req));
        // (constraint set, cpu, memory, priority) of pods that failed without preempting.
        let mut failed: Vec<(usize, i64, i64, i32)> = Vec::new();
        for slot in order {
            let Some(pod) = &self.pods[slot] else {
                continue;
            };
            if pod.phase != Phase::Pending {
                continue;
            }
            let class = (
                Arc::as_ptr(&pod.req.placement) as usize,
                pod.req.requests.milli_cpu,
                pod.req.requests.memory,
                pod.req.priority,
            );
            let nominated = pod.req.nominated_node_name.is_some();
            if !nominated && failed.contains(&class) {
                self.unschedulable(slot);
                continue;
            }
            let decision = self.snapshot.schedule(&pod.req);
            match &decision {
                Decision::Bind { node } => {
                    let node = self.node_index[node];
                    self.bind(slot, node, &decision);
                }
                Decision::Unschedulable {
                    nomination,
                    preemption,
                    ..
                } => {
                    let now = self.at(self.now);
                    let req = &self.pods[slot].as_ref().expect("live").req;
                    self.snapshot.assume(req, &decision, now);
                    if let Some(plan) = preemption {
                        for v in plan.victims.iter().filter(|v| !v.already_terminating) {
                            if let Some(&victim) = self.uid_slot.get(&v.pod.uid) {
                                self.delete_pod(victim, Deletion::Preempted);
                            }
                        }
                        for r in &plan.clear_nominated {
                            if let Some(&other) = self.uid_slot.get(&r.uid) {
                                self.pod_mut(other).req.nominated_node_name = None;
                                self.fresh.push(other);
                            }
                        }
                    }
                    let pod = self.pod_mut(slot);
                    match nomination {
                        Nomination::Set(n) => {
                            pod.req.nominated_node_name = Some(n.clone());
                            pod.provisionable = false;
                        }
                        Nomination::Clear => pod.req.nominated_node_name = None,
                        Nomination::Keep => {}
                    }
                    if preemption.is_none() {
                        if !nominated {
                            failed.push(class);
                        }
                        self.unschedulable(slot);
                    }
                }
            }
        }
    }

    /// The pod stays pending; without a nomination Karpenter is to provision for it. A
    /// pod already provisioned for triggers again when Karpenter's plan for it did not
    /// hold — it planned the pod onto a node that is up (kube-scheduler still refused it:
    /// nominated preemptors hold the room) or gone — as each failed attempt updates the
    /// live pod's status and so re-triggers the live provisioner.
    pub(super) fn unschedulable(&mut self, slot: usize) {
        let pod = self.pod(slot);
        if pod.req.nominated_node_name.is_some() {
            return;
        }
        let plan_failed = pod.provisionable
            && pod
                .karpenter_target
                .is_some_and(|n| self.nodes[n].ready.is_some() || self.nodes[n].gone.is_some());
        if !pod.provisionable || plan_failed {
            let pod = self.pod_mut(slot);
            pod.provisionable = true;
            pod.karpenter_target = None;
            self.trigger_provisioning();
        }
    }
}
