//! The shared policy's jobs and pods: attempts, pod creation and binding, containers
//! starting, tasks handed out and finished, deletions and their exits, billing each pod
//! as it ends.

use super::*;

impl Sim<'_> {
    pub(super) fn start_attempt(&mut self, job: u32) {
        let j = &self.jobs[job as usize];
        let run = &mut self.runs[job as usize];
        run.state = RunState::Active;
        run.queue = j.tasks.iter().rev().copied().collect();
        run.done = 0;
        run.executors.clear();
        run.executors_created = 0;
        let slot = self.create_pod(job, Role::Driver);
        self.runs[job as usize].driver = Some(slot);
    }

    pub(super) fn create_pod(&mut self, job: u32, role: Role) -> usize {
        let j = &self.jobs[job as usize];
        let c = &self.w.categories[j.category];
        let run = &mut self.runs[job as usize];
        let (mut req, name, do_not_disrupt) = match role {
            Role::Driver => (
                self.templates[j.category][0].clone(),
                format!("j{job:06}-a{}-driver", run.attempt),
                c.driver.do_not_disrupt,
            ),
            Role::Executor => {
                run.executors_created += 1;
                (
                    self.templates[j.category][1].clone(),
                    format!(
                        "j{job:06}-a{}-exec-{:04}",
                        run.attempt, run.executors_created
                    ),
                    c.executors.do_not_disrupt,
                )
            }
        };
        let attempt = run.attempt;
        req.uid = name.clone();
        req.name = name;
        req.creation_timestamp = Some(self.at(self.now));
        self.serial += 1;
        let pod = Pod {
            serial: self.serial,
            req,
            job,
            attempt,
            role,
            phase: Phase::Pending,
            node: None,
            bound_at: 0,
            running: false,
            tasks: Vec::new(),
            provisionable: false,
            karpenter_target: None,
            do_not_disrupt,
        };
        let slot = match self.free_slots.pop() {
            Some(s) => {
                self.pods[s] = Some(pod);
                s
            }
            None => {
                self.pods.push(Some(pod));
                self.pods.len() - 1
            }
        };
        self.uid_slot.insert(self.pod(slot).req.uid.clone(), slot);
        self.pending.insert(slot);
        self.fresh.push(slot);
        if role == Role::Executor {
            self.runs[job as usize].executors.push(slot);
        }
        slot
    }

    pub(super) fn bind(&mut self, slot: usize, node: usize, decision: &Decision) {
        let now = self.now;
        let start = self.at(now);
        let pod = self.pods[slot].as_mut().expect("live");
        pod.req.start_time = Some(start);
        self.snapshot.assume(&pod.req, decision, start);
        pod.req.node_name = Some(self.nodes[node].name.clone());
        pod.req.nominated_node_name = None;
        pod.phase = Phase::Bound;
        pod.node = Some(node);
        pod.bound_at = now;
        pod.provisionable = false;
        pod.karpenter_target = None;
        self.pending.remove(&slot);
        let n = &mut self.nodes[node];
        n.pods.push(slot);
        n.last_pod_event = now;
        let image = *n.image_ready.get_or_insert(now + self.w.timing.image_pull);
        let running = image.max(now) + self.w.timing.container_start;
        self.state_version += 1;
        let key = self.key(slot);
        self.push(running, Event::Running(key));
    }

    pub(super) fn container_started(&mut self, slot: usize) {
        let pod = self.pod(slot);
        if pod.phase != Phase::Bound {
            return;
        }
        let (job, role) = (pod.job, pod.role);
        self.pod_mut(slot).running = true;
        match role {
            Role::Driver => {
                let outcome = &mut self.out.jobs[job as usize];
                outcome.driver_running.get_or_insert(self.now);
                let count = self.w.categories[self.jobs[job as usize].category].executor_count;
                for _ in 0..count {
                    self.create_pod(job, Role::Executor);
                }
            }
            Role::Executor => self.fill(slot),
        }
    }

    /// Hands queued tasks to the executor's free slots.
    pub(super) fn fill(&mut self, slot: usize) {
        let job = self.pod(slot).job as usize;
        let slots = self.jobs[job].slots_per_executor as usize;
        let key = self.key(slot);
        while self.pod(slot).tasks.len() < slots {
            let Some(task) = self.runs[job].queue.pop() else {
                break;
            };
            self.pod_mut(slot).tasks.push(task);
            let at = self.now + Millis::from(task);
            self.push(at, Event::TaskDone(key, task));
        }
    }

    pub(super) fn task_done(&mut self, slot: usize, task: u32) {
        let pod = self.pods[slot].as_mut().expect("live");
        if !pod.running {
            return; // lost with its executor; the task went back to the queue
        }
        let Some(i) = pod.tasks.iter().position(|&t| t == task) else {
            return;
        };
        pod.tasks.swap_remove(i);
        let job = pod.job as usize;
        self.runs[job].done += 1;
        if self.runs[job].done == self.jobs[job].tasks.len() {
            self.end_attempt(job as u32, true);
        } else {
            self.fill(slot);
        }
    }

    /// Stops a pod's work: its tasks go back to its job's queue.
    pub(super) fn stop(&mut self, slot: usize) {
        let pod = self.pods[slot].as_mut().expect("live");
        pod.running = false;
        let tasks = std::mem::take(&mut pod.tasks);
        let job = pod.job as usize;
        if self.runs[job].state == RunState::Active {
            self.runs[job].queue.extend(tasks);
        }
    }

    /// Deletes a bound pod: it stops now and leaves its node `timing.pod_exit` later.
    pub(super) fn delete_pod(&mut self, slot: usize, why: Deletion) {
        let pod = self.pod(slot);
        if pod.phase != Phase::Bound {
            return;
        }
        let category = self.jobs[pod.job as usize].category;
        let counts = &mut self.out.categories[category];
        match why {
            Deletion::Preempted => counts.preempted_pods += 1,
            Deletion::Interrupted => counts.interrupted_pods += 1,
            Deletion::Disrupted => counts.disrupted_pods += 1,
        }
        self.stop(slot);
        let now = self.at(self.now);
        let pod = self.pod_mut(slot);
        pod.phase = Phase::Terminating;
        pod.req.deletion_timestamp.get_or_insert(now);
        if why != Deletion::Preempted {
            // Preemption's victims were marked by `assume`; evictions are recorded here.
            let req = pod.req.clone();
            self.snapshot.upsert_pod(req);
        }
        let key = self.key(slot);
        self.push(self.now + self.w.timing.pod_exit, Event::Exited(key));
    }

    /// A deleted pod is gone: a lost executor is replaced, a lost driver fails its attempt.
    pub(super) fn exited(&mut self, slot: usize) {
        let pod = self.pod(slot);
        let (job, attempt, role) = (pod.job, pod.attempt, pod.role);
        self.stop(slot);
        self.release(slot);
        let run = &mut self.runs[job as usize];
        if run.state != RunState::Active || run.attempt != attempt {
            return;
        }
        match role {
            Role::Executor => {
                run.executors.retain(|&s| s != slot);
                self.create_pod(job, Role::Executor);
            }
            Role::Driver => {
                run.driver = None;
                self.end_attempt(job, false);
            }
        }
    }

    /// Ends an attempt: every pod of it ends now. A successful one settles the job; a
    /// failed one is retried while attempts remain.
    pub(super) fn end_attempt(&mut self, job: u32, success: bool) {
        let run = &mut self.runs[job as usize];
        let pods: Vec<usize> = run
            .driver
            .take()
            .into_iter()
            .chain(run.executors.drain(..))
            .collect();
        run.queue.clear();
        for slot in pods {
            match self.pod(slot).phase {
                Phase::Pending => self.forget(slot),
                Phase::Bound => {
                    self.stop(slot);
                    self.release(slot);
                }
                // Deleted already: leaves when it exits (its exit finds the attempt over).
                Phase::Terminating => {}
            }
        }
        let max_attempts = self.w.max_attempts;
        let category = self.jobs[job as usize].category;
        let run = &mut self.runs[job as usize];
        if success || run.attempt >= max_attempts {
            run.state = RunState::Settled;
            self.settled += 1;
            let outcome = &mut self.out.jobs[job as usize];
            outcome.finished = Some(self.now);
            outcome.failed = !success;
        } else {
            run.attempt += 1;
            run.state = RunState::Submitting;
            let attempt = run.attempt;
            self.out.categories[category].retries += 1;
            self.out.jobs[job as usize].attempts = attempt;
            self.push(
                self.now + self.w.timing.submit,
                Event::DriverCreated { job, attempt },
            );
        }
    }

    /// Drops a pending pod.
    pub(super) fn forget(&mut self, slot: usize) {
        let pod = self.pods[slot].take().expect("live");
        self.pending.remove(&slot);
        self.uid_slot.remove(&pod.req.uid);
        // A pending pod is tracked only while nominated.
        self.snapshot.remove_pod(&pod.req.uid);
        self.free_slots.push(slot);
    }

    /// A bound (or terminating) pod leaves its node now: it is billed and its resources
    /// are free.
    pub(super) fn release(&mut self, slot: usize) {
        let pod = self.pods[slot].take().expect("live");
        let node_id = pod.node.expect("bound");
        let now = self.now;
        self.snapshot.remove_pod(&pod.req.uid);
        self.uid_slot.remove(&pod.req.uid);
        self.free_slots.push(slot);
        let node = &mut self.nodes[node_id];
        node.pods.retain(|&s| s != slot);
        node.last_pod_event = now;
        let vcpu = pod.req.requests.milli_cpu as f64 / 1000.0;
        let usage = PodUsage {
            name: String::new(),
            role: match pod.role {
                Role::Driver => "driver".into(),
                Role::Executor => "executor".into(),
            },
            start: self.w.start + chrono::Duration::milliseconds(pod.bound_at),
            end: self.w.start + chrono::Duration::milliseconds(now),
            vcpu,
            memory_bytes: pod.req.requests.memory as f64,
            node: Some(node.shape.clone()),
        };
        let cost = sparkyard_cost::cost_of_pod(&usage, &self.rates);
        let category = self.jobs[pod.job as usize].category;
        let counts = &mut self.out.categories[category];
        counts.emr_usd += cost.emr_usd;
        counts.ec2_usd += cost.ec2_usd;
        self.out.emr_usd += cost.emr_usd;
        self.out.timeline.pod(pod.bound_at, now, vcpu);
        self.state_version += 1;
        self.retry_all = true;
    }
}
