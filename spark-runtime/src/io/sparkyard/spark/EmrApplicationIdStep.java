package io.sparkyard.spark;

import java.lang.reflect.Field;

import org.apache.spark.deploy.k8s.KubernetesDriverConf;
import org.apache.spark.deploy.k8s.SparkPod;
import org.apache.spark.deploy.k8s.features.KubernetesDriverCustomFeatureConfigStep;

/**
 * Gives a job run's Spark application the id EMR on EKS gives it: {@code spark-<jobRunId>},
 * taken from the submitted {@code spark.app.id} (which sparkyard's controller sets and users
 * cannot override, as on EMR).
 *
 * <p>Open-source Spark on Kubernetes ignores a submitted {@code spark.app.id} in cluster
 * mode: {@code KubernetesClientApplication} draws {@code spark-<32 hex>} before any conf is
 * read and keeps it in {@link KubernetesDriverConf#appId()}, from which every built-in step
 * derives the {@code spark-app-selector} label (driver, executors, ConfigMaps, Service), the
 * driver's {@code SPARK_APPLICATION_ID} and its {@code spark.app.id}, hence the event-log
 * name and the History Server's address. Spark runs custom driver steps' {@code init} before
 * it builds its own steps, so replacing that one value here makes all of them agree, with no
 * patched Spark. The field is private and final, so the replacement is by reflection; a
 * Spark that renames it fails the submission with a clear message rather than running under
 * the wrong id.
 *
 * <p>Enabled by the controller with {@code spark.kubernetes.driver.pod.featureSteps}.
 */
public final class EmrApplicationIdStep implements KubernetesDriverCustomFeatureConfigStep {
  /** The conf that carries the wanted id. */
  public static final String APP_ID_CONF = "spark.app.id";

  @Override
  public void init(KubernetesDriverConf conf) {
    String wanted = conf.sparkConf().get(APP_ID_CONF, null);
    if (wanted == null || wanted.isEmpty() || wanted.equals(conf.appId())) {
      return;
    }
    try {
      Field appId = KubernetesDriverConf.class.getDeclaredField("appId");
      appId.setAccessible(true);
      appId.set(conf, wanted);
    } catch (ReflectiveOperationException | RuntimeException e) {
      throw new IllegalStateException(
          "sparkyard cannot give this Spark's application the id " + wanted
              + " (KubernetesDriverConf.appId changed?)",
          e);
    }
  }

  @Override
  public SparkPod configurePod(SparkPod pod) {
    return pod;
  }
}
