#!/usr/bin/env bash
# Installs what is missing, starts sparkyard on the embedded default (data in .sparkyard/),
# and runs the seed's pi job the way the seed does — aws CLI and kubectl — to COMPLETED,
# showing its progress, its driver log from S3, and where the logs and the Spark UI are.
# Exits 0 only when the run COMPLETED.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=setup.sh
source "$ROOT/scripts/setup.sh"

DATA="$ROOT/.sparkyard"
LISTEN="${SPARKYARD_LISTEN:-127.0.0.1:4750}"
mkdir -p "$DATA"

# Restart a sparkyard this script started before, so the freshly built binary serves.
if [ -f "$DATA/sparkyard.pid" ] && kill -0 "$(cat "$DATA/sparkyard.pid")" 2>/dev/null; then
  kill "$(cat "$DATA/sparkyard.pid")" && sleep 1
fi
say "sparkyard serve --data-dir .sparkyard --listen $LISTEN (log: .sparkyard/sparkyard.log)"
nohup "$SPARKYARD_BIN" serve --data-dir "$DATA" --listen "$LISTEN" >"$DATA/sparkyard.log" 2>&1 &
echo $! >"$DATA/sparkyard.pid"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${LISTEN%:*}/${LISTEN#*:}") 2>/dev/null && break
  sleep 0.1
done

export AWS_CONFIG_FILE="$DATA/aws/config" AWS_SHARED_CREDENTIALS_FILE="$DATA/aws/credentials" AWS_PROFILE=sparkyard
export KUBECONFIG="$DATA/cluster/kubeconfig"
for _ in $(seq 100); do [ -f "$KUBECONFIG" ] && break; sleep 0.1; done
ACCOUNT="$(aws sts get-caller-identity --query Account --output text)"
REGION="$(aws configure get region)"
NS=monthly-batch
ROLE="$NS-JobExecutionRole"

# The seed's steps for one job category, with its own commands (../shared/seed/walkthrough.md).
say "step 5: namespace and virtual cluster $NS-emr-cluster"
kubectl get namespace "$NS" >/dev/null 2>&1 || kubectl create namespace "$NS"
VC="$(aws emr-containers list-virtual-clusters --query "virtualClusters[?name=='$NS-emr-cluster' && state=='RUNNING' && containerProvider.id=='eks-emr-cluster'].id" --output text)"
if [ -z "$VC" ] || [ "$VC" = "None" ]; then
  VC="$(aws emr-containers create-virtual-cluster --name "$NS-emr-cluster" \
    --container-provider "{\"id\":\"eks-emr-cluster\",\"type\":\"EKS\",\"info\":{\"eksInfo\":{\"namespace\":\"$NS\"}}}" \
    --query id --output text)"
fi
echo "virtual cluster: $VC"

say "step 7: job execution role $ROLE"
if ! aws iam get-role --role-name "$ROLE" >/dev/null 2>&1; then
  cat >"$DATA/trust-policy.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "elasticmapreduce.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
JSON
  cat >"$DATA/job-policy.json" <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"], "Resource": "*"},
  {"Effect": "Allow", "Action": ["logs:PutLogEvents", "logs:CreateLogStream", "logs:DescribeLogGroups", "logs:DescribeLogStreams"], "Resource": ["arn:aws:logs:*:*:*"]}]}
JSON
  aws iam create-role --role-name "$ROLE" --assume-role-policy-document "file://$DATA/trust-policy.json" >/dev/null
  aws iam put-role-policy --role-name "$ROLE" --policy-name EMR-Containers-Job-Execution --policy-document "file://$DATA/job-policy.json"
  aws emr-containers update-role-trust-policy --cluster-name eks-emr-cluster --namespace "$NS" --role-name "$ROLE"
fi
ROLE_ARN="$(aws iam get-role --role-name "$ROLE" --query Role.Arn --output text)"

say "step 8: log group and log bucket"
LOG_GROUP="/emr-on-eks/eks-emr-cluster/$NS"
BUCKET="$NS-logs-$ACCOUNT-$REGION"
aws logs describe-log-groups --log-group-name-prefix "$LOG_GROUP" --query 'logGroups[].logGroupName' --output text | grep -qx "$LOG_GROUP" \
  || aws logs create-log-group --log-group-name="$LOG_GROUP"
aws s3 ls "s3://$BUCKET" >/dev/null 2>&1 || aws s3 mb "s3://$BUCKET"

say "step 9: start-job-run pi-4, then follow it"
REQUEST="$DATA/pi-4.json"
cat >"$REQUEST" <<JSON
{
  "name": "pi-4",
  "virtualClusterId": "$VC",
  "executionRoleArn": "$ROLE_ARN",
  "releaseLabel": "emr-6.3.0-latest",
  "jobDriver": {
    "sparkSubmitJobDriver": {
      "entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py",
      "sparkSubmitParameters": "--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1"
    }
  },
  "configurationOverrides": {
    "applicationConfiguration": [
      {"classification": "spark-defaults",
       "properties": {"spark.dynamicAllocation.enabled": "false", "spark.kubernetes.executor.deleteOnTermination": "true"}}
    ],
    "monitoringConfiguration": {
      "cloudWatchMonitoringConfiguration": {"logGroupName": "$LOG_GROUP", "logStreamNamePrefix": "pi"},
      "s3MonitoringConfiguration": {"logUri": "s3://$BUCKET/"}
    }
  }
}
JSON
JOB="$(aws emr-containers start-job-run --cli-input-json "file://$REQUEST" --query id --output text)"
echo "job run: $JOB"
last=""
while :; do
  state="$(aws emr-containers describe-job-run --virtual-cluster-id "$VC" --id "$JOB" --query jobRun.state --output text)"
  if [ "$state" != "$last" ]; then
    printf '%s  %s\n' "$(date +%T)" "$state"
    [ "$state" = RUNNING ] && kubectl get pods -n "$NS" -l "emr-containers.amazonaws.com/job.id=$JOB"
    last="$state"
  fi
  case "$state" in COMPLETED | FAILED | CANCELLED) break ;; esac
  sleep 2
done
aws emr-containers describe-job-run --virtual-cluster-id "$VC" --id "$JOB" \
  --query 'jobRun.{id:id,name:name,state:state,stateDetails:stateDetails,failureReason:failureReason}' --output table

DRIVER_LOG="$VC/jobs/$JOB/containers/spark-$JOB/spark-$JOB-driver/stdout.gz"
say "the driver's stdout, from S3 (s3://$BUCKET/$DRIVER_LOG)"
for _ in $(seq 30); do aws s3 ls "s3://$BUCKET/$DRIVER_LOG" >/dev/null 2>&1 && break; sleep 1; done
aws s3 cp "s3://$BUCKET/$DRIVER_LOG" - | gunzip | grep -E "Pi is roughly" || true

say "what the run cost (sparkyard runs cost $JOB): written once its pods have all ended"
for _ in $(seq 30); do
  "$SPARKYARD_BIN" runs cost "$JOB" --data-dir "$DATA" --output json 2>/dev/null | grep -q '"vcpuHours"' && break
  sleep 1
done
"$SPARKYARD_BIN" runs cost "$JOB" --data-dir "$DATA" || true

# Open-source Spark picks its own application id, so the UI's address comes from the run's
# driver pod (sparkyard runs ui).
UI="$("$SPARKYARD_BIN" runs ui "$JOB" --data-dir "$DATA" 2>&1 || true)"

cat <<MSG

Logs:      s3://$BUCKET/$VC/jobs/$JOB/containers/   and CloudWatch group $LOG_GROUP, streams pi/$VC/jobs/$JOB/...
Spark UI:  $UI   (Spark History Server; sparkyard runs ui <id>)
Cost:      sparkyard runs cost $JOB   (docs/cost.md; sparkyard simulate for a whole job mix: docs/simulator.md)
sparkyard keeps running (pid $(cat "$DATA/sparkyard.pid")); stop it with: kill \$(cat .sparkyard/sparkyard.pid)
Try it yourself:
  export AWS_CONFIG_FILE=$AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE=$AWS_SHARED_CREDENTIALS_FILE KUBECONFIG=$KUBECONFIG
  aws --profile sparkyard emr-containers list-job-runs --virtual-cluster-id $VC
  kubectl get pods -n $NS
MSG
[ "$state" = COMPLETED ]
