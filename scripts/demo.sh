#!/usr/bin/env bash
# Installs what is missing, starts sparkyard on the embedded default (data in .sparkyard/),
# and runs the seed's job the way the seed does: with the real AWS CLI.
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
ACCOUNT="$(aws sts get-caller-identity --query Account --output text 2>/dev/null || echo 123456789012)"
REGION="$(aws configure get region)"

say "virtual cluster monthly-batch-emr-cluster (seed step 5)"
VC="$(aws emr-containers list-virtual-clusters --query "virtualClusters[?name=='monthly-batch-emr-cluster' && state=='RUNNING' && containerProvider.id=='eks-emr-cluster'].id" --output text)"
if [ -z "$VC" ] || [ "$VC" = "None" ]; then
  VC="$(aws emr-containers create-virtual-cluster --name monthly-batch-emr-cluster \
    --container-provider '{"id":"eks-emr-cluster","type":"EKS","info":{"eksInfo":{"namespace":"monthly-batch"}}}' \
    --query id --output text)"
fi
echo "virtual cluster: $VC"

say "start-job-run pi-4 (seed step 9)"
REQUEST="$DATA/pi-4.json"
cat >"$REQUEST" <<JSON
{
  "name": "pi-4",
  "virtualClusterId": "$VC",
  "executionRoleArn": "arn:aws:iam::$ACCOUNT:role/monthly-batch-JobExecutionRole",
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
      "cloudWatchMonitoringConfiguration": {"logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch", "logStreamNamePrefix": "pi"},
      "s3MonitoringConfiguration": {"logUri": "s3://monthly-batch-logs-$ACCOUNT-$REGION/"}
    }
  }
}
JSON
JOB="$(aws emr-containers start-job-run --cli-input-json "file://$REQUEST" --query id --output text)"
echo "job run: $JOB"
aws emr-containers describe-job-run --virtual-cluster-id "$VC" --id "$JOB" \
  --query 'jobRun.{id:id,name:name,state:state,stateDetails:stateDetails,createdAt:createdAt}' --output table

cat <<MSG

sparkyard keeps running (pid $(cat "$DATA/sparkyard.pid")); stop it with: kill \$(cat .sparkyard/sparkyard.pid)
Use it with the AWS CLI:
  export AWS_CONFIG_FILE=$AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE=$AWS_SHARED_CREDENTIALS_FILE
  aws --profile sparkyard emr-containers list-job-runs --virtual-cluster-id $VC
MSG
