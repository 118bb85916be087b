#!/usr/bin/env bash
# The seed's numbered scripts as one runnable replay, steps 2–22 of
# ../shared/seed/emr-on-eks-transient-clusters.md (their commands: ../shared/seed/walkthrough.md),
# against sparkyard on the embedded cluster, with the unchanged AWS CLI and kubectl.
# Each step prints what it runs and what to look at. Steps that need parts sparkyard does
# not have yet (the console) say so and move on.
#
#   ./scripts/walkthrough.sh            # the whole replay (about 5 minutes with the default sleeps)
#   WALKTHROUGH_UNIT=20 ./scripts/walkthrough.sh   # the seed's own sleeps (x*20 s per task)
#   WALKTHROUGH_KEEP=1 ./scripts/walkthrough.sh    # skip step 22's clean-up, leave sparkyard running
#
# Exits non-zero when a step does not do what the seed says it does.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"

DATA="$ROOT/.sparkyard-walkthrough"
WORK="$DATA/files"
LISTEN="${SPARKYARD_LISTEN:-127.0.0.1:4760}"
UNIT="${WALKTHROUGH_UNIT:-3}"
CATEGORIES=(realtime-batch intra-day-batch nightly-batch monthly-batch adhoc-ml-batch)

step() { printf '\n\033[1m== step %s: %s\033[0m\n' "$1" "$2"; }
run() { printf '$ %s\n' "$*"; "$@"; }
look() { printf '   \033[36mlook at:\033[0m %s\n' "$*"; }
fail() { printf '\033[31mwalkthrough: %s\033[0m\n' "$*" >&2; exit 1; }

# Waits for a job run to end; prints its state changes; fails unless COMPLETED.
wait_run() {
  local vc="$1" id="$2" last="" state
  while :; do
    state="$(aws emr-containers describe-job-run --virtual-cluster-id "$vc" --id "$id" --query jobRun.state --output text)"
    [ "$state" != "$last" ] && printf '   %s  %s %s\n' "$(date +%T)" "$id" "$state" && last="$state"
    case "$state" in COMPLETED) return 0 ;; FAILED | CANCELLED) fail "job run $id ended $state" ;; esac
    sleep 2
  done
}

vc_id() {
  aws emr-containers list-virtual-clusters \
    --query "virtualClusters[?name=='$1-emr-cluster' && state=='RUNNING' && containerProvider.id=='eks-emr-cluster'].id" --output text
}

mkdir -p "$WORK"
if [ -f "$DATA/sparkyard.pid" ] && kill -0 "$(cat "$DATA/sparkyard.pid")" 2>/dev/null; then
  kill "$(cat "$DATA/sparkyard.pid")" && sleep 1
fi
rm -rf "$DATA/state" && mkdir -p "$DATA/state"

step 2 "environment variables"
export CLUSTER_NAME="eks-emr-cluster" AWS_REGION="us-east-2"
export AWS_CONFIG_FILE="$DATA/state/aws/config" AWS_SHARED_CREDENTIALS_FILE="$DATA/state/aws/credentials" AWS_PROFILE=sparkyard
export KUBECONFIG="$DATA/state/cluster/kubeconfig"
echo "CLUSTER_NAME=$CLUSTER_NAME AWS_REGION=$AWS_REGION (AWS_PROFILE=sparkyard, KUBECONFIG=$KUBECONFIG)"

step 3 "create the EKS cluster (eksctl create cluster -f → sparkyard serve --cluster-config)"
# The seed's ClusterConfig, with the 4-vCPU node its step 16 congests (m5.xlarge).
cat >"$WORK/eks-cluster.yaml" <<YAML
apiVersion: eksctl.io/v1alpha5
kind: ClusterConfig
metadata:
  name: $CLUSTER_NAME
  region: $AWS_REGION
  tags:
    karpenter.sh/discovery: $CLUSTER_NAME
iam:
  withOIDC: true
managedNodeGroups:
  - name: $CLUSTER_NAME-ng
    instanceType: m5.xlarge
    desiredCapacity: 1
    minSize: 1
    maxSize: 10
YAML
# Container Insights every 10 s and alarms evaluated as often, so the replay's few minutes
# show them (both 60 s by default, as on AWS).
cat >"$WORK/sparkyard.toml" <<TOML
[container-insights]
interval = "10s"

[services]
alarm-evaluation-interval = "10s"
TOML
echo "\$ sparkyard serve --cluster-config $WORK/eks-cluster.yaml (log: $DATA/sparkyard.log)"
nohup "$SPARKYARD_BIN" serve --data-dir "$DATA/state" --listen "$LISTEN" --config "$WORK/sparkyard.toml" \
  --cluster-config "$WORK/eks-cluster.yaml" >"$DATA/sparkyard.log" 2>&1 &
echo $! >"$DATA/sparkyard.pid"
for _ in $(seq 300); do [ -f "$KUBECONFIG" ] && [ -f "$AWS_CONFIG_FILE" ] && break; sleep 0.1; done
[ -f "$KUBECONFIG" ] || fail "sparkyard did not start; see $DATA/sparkyard.log"
AWS_ACCOUNT_ID="$(aws sts get-caller-identity --query Account --output text)"
export AWS_ACCOUNT_ID

step 4 "verify the EKS cluster"
run aws eks describe-cluster --name "$CLUSTER_NAME" --query 'cluster.{name:name,status:status,version:version,endpoint:endpoint}' --output table
until [ "$(aws eks describe-nodegroup --cluster-name "$CLUSTER_NAME" --nodegroup-name "$CLUSTER_NAME-ng" --query nodegroup.status --output text)" = ACTIVE ]; do sleep 1; done
run aws eks describe-nodegroup --cluster-name "$CLUSTER_NAME" --nodegroup-name "$CLUSTER_NAME-ng" \
  --query 'nodegroup.{status:status,instanceTypes:instanceTypes,scaling:scalingConfig}' --output json
run kubectl get nodes -L node.kubernetes.io/instance-type,eks.amazonaws.com/nodegroup,eks.amazonaws.com/capacityType
look "one m5.xlarge node of the node group, ACTIVE"

step 5 "namespaces and virtual clusters for the five job categories"
for ns in "${CATEGORIES[@]}"; do
  kubectl get namespace "$ns" >/dev/null 2>&1 || run kubectl create namespace "$ns"
  [ -n "$(vc_id "$ns")" ] || run aws emr-containers create-virtual-cluster --name "$ns-emr-cluster" \
    --container-provider "{\"id\":\"$CLUSTER_NAME\",\"type\":\"EKS\",\"info\":{\"eksInfo\":{\"namespace\":\"$ns\"}}}" --output text --query id
done
# eksctl create iamidentitymapping --service-name emr-containers: the Role and RoleBinding
# appear with the virtual cluster.
for _ in $(seq 100); do kubectl get rolebinding emr-containers -n monthly-batch >/dev/null 2>&1 && break; sleep 0.2; done
run kubectl get role,rolebinding -n monthly-batch
look "role/emr-containers and rolebinding/emr-containers in each namespace"

step 6 "verify the virtual clusters"
run aws emr-containers list-virtual-clusters --query 'virtualClusters[?state==`RUNNING`].{name:name,id:id,namespace:containerProvider.info.eksInfo.namespace}' --output table

step 7 "job execution roles"
cat >"$WORK/trust-policy.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "elasticmapreduce.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
JSON
cat >"$WORK/job-policy.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"], "Resource": "*"},
  {"Effect": "Allow", "Action": ["logs:PutLogEvents", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams"], "Resource": ["arn:aws:logs:*:*:*"]}]}
JSON
for ns in "${CATEGORIES[@]}"; do
  aws iam create-role --role-name "$ns-JobExecutionRole" --assume-role-policy-document "file://$WORK/trust-policy.json" --query Role.Arn --output text
  aws iam put-role-policy --role-name "$ns-JobExecutionRole" --policy-name EMR-Containers-Job-Execution --policy-document "file://$WORK/job-policy.json"
  aws emr-containers update-role-trust-policy --cluster-name "$CLUSTER_NAME" --namespace "$ns" --role-name "$ns-JobExecutionRole" >/dev/null
done
look "five roles, each trusted by its namespace's service accounts (update-role-trust-policy)"

step 8 "log locations: a CloudWatch log group and an S3 bucket per category"
for ns in "${CATEGORIES[@]}"; do
  run aws logs create-log-group --log-group-name="/emr-on-eks/$CLUSTER_NAME/$ns"
  run aws s3 mb "s3://$ns-logs-$AWS_ACCOUNT_ID-$AWS_REGION"
done

step 9 "a simple job: pi-4 on monthly-batch"
MONTHLY="$(vc_id monthly-batch)"
cat >"$WORK/pi-4.json" <<JSON
{
  "name": "pi-4",
  "virtualClusterId": "$MONTHLY",
  "executionRoleArn": "$(aws iam get-role --role-name monthly-batch-JobExecutionRole --query Role.Arn --output text)",
  "releaseLabel": "emr-6.3.0-latest",
  "jobDriver": {"sparkSubmitJobDriver": {
    "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
    "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1"}},
  "configurationOverrides": {
    "applicationConfiguration": [{"classification": "spark-defaults",
      "properties": {"spark.dynamicAllocation.enabled": "false", "spark.kubernetes.executor.deleteOnTermination": "true"}}],
    "monitoringConfiguration": {
      "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/$CLUSTER_NAME/monthly-batch", "logStreamNamePrefix": "pi"},
      "s3MonitoringConfiguration": {"logUri": "s3://monthly-batch-logs-$AWS_ACCOUNT_ID-$AWS_REGION/"}}}
}
JSON
PI="$(aws emr-containers start-job-run --cli-input-json "file://$WORK/pi-4.json" --query id --output text)"
echo "job run: $PI"

step 10 "job status"
for _ in $(seq 300); do
  [ "$(kubectl get pods -n monthly-batch -l spark-role=executor --no-headers 2>/dev/null | wc -l)" -gt 0 ] && break
  sleep 1
done
run kubectl get pods -n monthly-batch
look "<jobRunId>-… (job runner), spark-<jobRunId>-driver, pythonpi-…-exec-1 and -exec-2"
wait_run "$MONTHLY" "$PI"

step 11 "logs: CloudWatch streams and S3 objects"
run aws logs describe-log-streams --log-group-name "/emr-on-eks/$CLUSTER_NAME/monthly-batch" --query 'logStreams[].logStreamName' --output text
aws s3 ls --recursive "s3://monthly-batch-logs-$AWS_ACCOUNT_ID-$AWS_REGION/$MONTHLY/jobs/$PI/" | head -20
look "stdout.gz/stderr.gz per container under <vc>/jobs/<job>/containers/…"

step "12–13" "Container Insights"
# sparkyard's built-in agent is the CloudWatch agent and fluent-bit DaemonSets of these steps.
NODE="$(kubectl get nodes -l "eks.amazonaws.com/nodegroup=$CLUSTER_NAME-ng" -o jsonpath='{.items[0].metadata.name}')"
INSTANCE="$(kubectl get node "$NODE" -o jsonpath='{.spec.providerID}')" && INSTANCE="${INSTANCE##*/}"
NODE_DIMS=(Name=ClusterName,Value="$CLUSTER_NAME" Name=NodeName,Value="$NODE" Name=InstanceId,Value="$INSTANCE")
until kubectl top nodes >/dev/null 2>&1; do sleep 1; done
run kubectl top nodes
until [ -n "$(aws cloudwatch list-metrics --namespace ContainerInsights --metric-name node_cpu_reserved_capacity --query 'Metrics[0].MetricName' --output text | grep -v None)" ]; do sleep 2; done
run aws cloudwatch list-metrics --namespace ContainerInsights --metric-name node_cpu_reserved_capacity \
  --query 'Metrics[].Dimensions[].[Name,Value]' --output text
run aws logs describe-log-streams --log-group-name "/aws/containerinsights/$CLUSTER_NAME/performance" --query 'logStreams[].logStreamName' --output text
# Step 17's "Reserved CPU reaching its threshold", as an alarm.
run aws cloudwatch put-metric-alarm --alarm-name "$CLUSTER_NAME-reserved-cpu" \
  --namespace ContainerInsights --metric-name node_cpu_reserved_capacity --dimensions "${NODE_DIMS[@]}" \
  --statistic Maximum --period 60 --evaluation-periods 1 --threshold 90 --comparison-operator GreaterThanOrEqualToThreshold
look "node and pod CPU and memory under ContainerInsights; EMF events per node in /aws/containerinsights/$CLUSTER_NAME/performance"

step 14 "priority classes"
for spec in "critical-priority 400 true" "realtime-priority 300 false" "high-priority 200 false" "low-priority 100 false"; do
  read -r name value global <<<"$spec"
  cat >"$WORK/$name.yml" <<YAML
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata:
  name: $name
value: $value
globalDefault: $global
description: "$name"
YAML
  run kubectl apply -f "$WORK/$name.yml"
done
run kubectl get priorityclasses

step 15 "pod templates in S3"
cat >"$WORK/spark_driver_pod_template.yml" <<'YAML'
apiVersion: v1
kind: Pod
spec:
  priorityClassName: "critical-priority"
  volumes:
    - name: source-data-volume
      emptyDir: {}
    - name: metrics-files-volume
      emptyDir: {}
  nodeSelector:
    eks.amazonaws.com/capacityType: ON_DEMAND
  containers:
  - name: spark-kubernetes-driver # This will be interpreted as Spark driver container
YAML
sed -e 's/spark-kubernetes-driver # This will be interpreted as Spark driver container/spark-kubernetes-executor # This will be interpreted as Spark executor container/' \
  "$WORK/spark_driver_pod_template.yml" >"$WORK/hp_spark_executor_pod_template.yml"
cat >"$WORK/lp_spark_executor_pod_template.yml" <<'YAML'
apiVersion: v1
kind: Pod
spec:
  priorityClassName: "low-priority"
  volumes:
    - name: source-data-volume
      emptyDir: {}
    - name: metrics-files-volume
      emptyDir: {}
  containers:
  - name: spark-kubernetes-executor # This will be interpreted as Spark executor container
YAML
TEMPLATES="s3://$CLUSTER_NAME-pod-templates-$AWS_ACCOUNT_ID-$AWS_REGION"
run aws s3 mb "$TEMPLATES"
for f in spark_driver_pod_template.yml hp_spark_executor_pod_template.yml lp_spark_executor_pod_template.yml; do
  run aws s3 cp "$WORK/$f" "$TEMPLATES/$f"
done

step 16 "priority-based jobs: low priority first, high priority a minute later"
JOBS="s3://$CLUSTER_NAME-demojobs-$AWS_ACCOUNT_ID-$AWS_REGION"
run aws s3 mb "$JOBS"
for job in low-priority-threadsleeper high-priority-threadsleeper; do
  cat >"$WORK/$job.py" <<PY
from time import sleep
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("$job").getOrCreate()
spark.sparkContext.parallelize(range(1, 6), 5).foreach(lambda x: sleep(x * $UNIT))
spark.stop()
PY
  run aws s3 cp "$WORK/$job.py" "$JOBS/$job.py"
done
# start_job <namespace> <name> <script> <executor template> <stream prefix>
start_job() {
  local ns="$1" name="$2" script="$3" template="$4" prefix="$5"
  aws emr-containers start-job-run --virtual-cluster-id "$(vc_id "$ns")" --name "$name" \
    --execution-role-arn "$(aws iam get-role --role-name "$ns-JobExecutionRole" --query Role.Arn --output text)" \
    --release-label emr-6.4.0-latest \
    --job-driver "{\"sparkSubmitJobDriver\":{\"entryPoint\":\"$JOBS/$script\",\"sparkSubmitParameters\":\"--conf spark.kubernetes.driver.podTemplateFile=\\\"$TEMPLATES/spark_driver_pod_template.yml\\\" --conf spark.kubernetes.executor.podTemplateFile=\\\"$TEMPLATES/$template\\\" --conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1\"}}" \
    --configuration-overrides "{\"applicationConfiguration\":[{\"classification\":\"spark-defaults\",\"properties\":{\"spark.dynamicAllocation.enabled\":\"false\",\"spark.kubernetes.executor.deleteOnTermination\":\"true\",\"spark.decommission.enabled\":\"true\"}}],\"monitoringConfiguration\":{\"cloudWatchMonitoringConfiguration\":{\"logGroupName\":\"/emr-on-eks/$CLUSTER_NAME/$ns\",\"logStreamNamePrefix\":\"$prefix\"},\"s3MonitoringConfiguration\":{\"logUri\":\"s3://$ns-logs-$AWS_ACCOUNT_ID-$AWS_REGION/\"}}}" \
    --query id --output text
}
LOW="$(start_job monthly-batch monthly-batch-low-priority-job low-priority-threadsleeper.py lp_spark_executor_pod_template.yml low-p-)"
echo "low-priority run: $LOW"
# "Wait for a minute, to start the executors of the job": until its executors run tasks
# (preempting an executor while SparkContext still starts trips a Spark race).
for _ in $(seq 300); do
  kubectl logs -n monthly-batch "spark-$LOW-driver" 2>/dev/null | grep -q "Starting task" && break
  sleep 1
done
run kubectl get pods -n monthly-batch -o wide
HIGH="$(start_job intra-day-batch intra-day-high-priority-time-sensitive-job high-priority-threadsleeper.py hp_spark_executor_pod_template.yml high-p-)"
echo "high-priority run: $HIGH"
wait_run "$(vc_id intra-day-batch)" "$HIGH"
wait_run "$MONTHLY" "$LOW"

step 17 "what happened"
run kubectl get events -n monthly-batch --field-selector reason=Preempted
START="$(date -u -d '-20 min' +%Y-%m-%dT%H:%M:%SZ)" END="$(date -u -d '+1 min' +%Y-%m-%dT%H:%M:%SZ)"
run aws cloudwatch get-metric-statistics --namespace ContainerInsights --metric-name node_cpu_reserved_capacity \
  --dimensions "${NODE_DIMS[@]}" --statistics Maximum --period 60 --start-time "$START" --end-time "$END" \
  --query 'sort_by(Datapoints,&Timestamp)[].Maximum' --output text
RESERVED="$(aws cloudwatch get-metric-statistics --namespace ContainerInsights --metric-name node_cpu_reserved_capacity \
  --dimensions "${NODE_DIMS[@]}" --statistics Maximum --period 3600 --start-time "$START" --end-time "$END" \
  --query 'max(Datapoints[].Maximum)' --output text)"
awk -v r="$RESERVED" 'BEGIN { exit !(r >= 90) }' || fail "node_cpu_reserved_capacity peaked at $RESERVED, not ≥ 90"
for _ in $(seq 120); do
  aws cloudwatch describe-alarm-history --alarm-name "$CLUSTER_NAME-reserved-cpu" --history-item-type StateUpdate \
    --query 'AlarmHistoryItems[].HistorySummary' --output text | grep -q "to ALARM" && break
  sleep 1
done
run aws cloudwatch describe-alarm-history --alarm-name "$CLUSTER_NAME-reserved-cpu" --history-item-type StateUpdate \
  --query 'AlarmHistoryItems[].[Timestamp,HistorySummary]' --output text
aws cloudwatch describe-alarm-history --alarm-name "$CLUSTER_NAME-reserved-cpu" --history-item-type StateUpdate \
  --query 'AlarmHistoryItems[].HistorySummary' --output text | grep -q "to ALARM" || fail "the reserved-CPU alarm never went to ALARM"
look "Reserved CPU (node_cpu_reserved_capacity) peaking at $RESERVED % while the high-priority driver needed room: why the low-priority executor was evicted"
look "the low job's executor preempted by the high job's, and back as a new executor id after it"

step 18 "Karpenter: the seed's Provisioner"
cat >"$WORK/provisioner.yaml" <<YAML
apiVersion: karpenter.sh/v1alpha5
kind: Provisioner
metadata:
  name: default
spec:
  requirements:
    - key: karpenter.sh/capacity-type
      operator: In
      values: ["spot", "on-demand"]
  labels:
    intent: emr-job
  provider:
    subnetSelector:
      karpenter.sh/discovery: $CLUSTER_NAME
    securityGroupSelector:
      karpenter.sh/discovery: $CLUSTER_NAME
    instanceProfile: KarpenterNodeInstanceProfile-$CLUSTER_NAME
    tags:
      accountingEC2Tag: KarpenterDevEnvironmentEC2
  ttlSecondsAfterEmpty: 30
YAML
run kubectl apply -f "$WORK/provisioner.yaml"
run kubectl get provisioners
run kubectl get pods -n karpenter
look "Karpenter runs in sparkyard; its log: kubectl logs -n karpenter -l app.kubernetes.io/name=karpenter"

step "19–20" "the cluster's resources (EKS console)"
echo "   sparkyard's console arrives with the console work (issue 13); kubectl shows the same:"
run kubectl get nodes -L node.kubernetes.io/instance-type

step 21 "autoscaling in action: both jobs at once"
kubectl get nodes -w -L karpenter.sh/capacity-type,node.kubernetes.io/instance-type,intent >"$DATA/nodes-watch.txt" 2>&1 &
WATCH=$!
LOW="$(start_job monthly-batch monthly-batch-low-priority-job low-priority-threadsleeper.py lp_spark_executor_pod_template.yml low-p-)"
HIGH="$(start_job intra-day-batch intra-day-high-priority-time-sensitive-job high-priority-threadsleeper.py hp_spark_executor_pod_template.yml high-p-)"
echo "runs: $LOW (low), $HIGH (high)"
for _ in $(seq 600); do
  [ -n "$(kubectl get nodes -l karpenter.sh/provisioner-name=default -o name 2>/dev/null)" ] && break
  sleep 1
done
run kubectl get nodeclaims
run kubectl get nodes -L karpenter.sh/capacity-type,node.kubernetes.io/instance-type,intent
look "a spot node labelled intent=emr-job that Karpenter chose; drivers stay on the node group's node:"
kubectl get pods -A -l spark-role -o custom-columns=NAMESPACE:.metadata.namespace,POD:.metadata.name,ROLE:.metadata.labels.spark-role,NODE:.spec.nodeName
wait_run "$(vc_id intra-day-batch)" "$HIGH"
wait_run "$MONTHLY" "$LOW"
echo "   both runs COMPLETED; waiting for Karpenter to remove the empty node(s) (ttlSecondsAfterEmpty: 30)"
until [ -z "$(kubectl get nodes -l karpenter.sh/provisioner-name=default -o name 2>/dev/null)" ]; do sleep 1; done
echo "   gone by $(date -u +%FT%TZ): compare Karpenter's \"added TTL to empty node\" and \"deleted node\" times below"
kill "$WATCH" 2>/dev/null || true
echo "\$ kubectl get nodes -w (as it happened):" && cat "$DATA/nodes-watch.txt"
run kubectl get nodes
kubectl logs -n karpenter -l app.kubernetes.io/name=karpenter --tail=-1 |
  grep -E 'found provisionable|created nodeclaim|launched nodeclaim|registered nodeclaim|initialized nodeclaim|added TTL|disrupting|tainted node|deleted node' || true
look "Karpenter's lines, as in the seed's screenshots; the cluster is back to one node"

if [ -n "${WALKTHROUGH_KEEP:-}" ]; then
  echo "WALKTHROUGH_KEEP set: sparkyard keeps running (pid $(cat "$DATA/sparkyard.pid"), data in $DATA/state)"
  exit 0
fi

step 22 "clean up"
run kubectl delete provisioner default   # helm uninstall karpenter: the Provisioner goes with it
for bucket in "$TEMPLATES" "$JOBS"; do
  run aws s3 rm --recursive "$bucket" >/dev/null
  run aws s3 rb --force "$bucket"
done
for ns in "${CATEGORIES[@]}"; do
  aws s3 rb --force "s3://$ns-logs-$AWS_ACCOUNT_ID-$AWS_REGION" >/dev/null
  aws logs delete-log-group --log-group-name "/emr-on-eks/$CLUSTER_NAME/$ns"
  aws iam delete-role-policy --role-name "$ns-JobExecutionRole" --policy-name EMR-Containers-Job-Execution
  aws iam delete-role --role-name "$ns-JobExecutionRole"
  aws emr-containers delete-virtual-cluster --id "$(vc_id "$ns")" >/dev/null
  kubectl delete namespace "$ns" --wait=false
done
echo "\$ eksctl delete cluster → stopping sparkyard"
kill "$(cat "$DATA/sparkyard.pid")"
echo "walkthrough complete"
