package io.sparkyard.spark;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.execution.HiveResult$;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Runs a Spark SQL file as an application: what a {@code sparkSqlJobDriver} job run does.
 *
 * <p>EMR on EKS runs {@code sparkSqlJobDriver} entry points in cluster mode, but Spark's own
 * SQL shell ({@code SparkSQLCLIDriver}) refuses cluster mode. This runner is submitted
 * instead ({@code --class io.sparkyard.spark.SqlFileRunner spark-internal -f <file>}): it
 * runs each statement of the file in order with {@code spark.sql}, and prints the rows of
 * every query as the shell does (Spark's {@code HiveResult}: a line a row, columns separated
 * by tabs). {@code -d}/{@code --define}/{@code --hivevar name=value} set variables the file uses
 * as {@code ${name}} (or {@code ${hivevar:name}}). The file is read through Hadoop's
 * FileSystem, so a local path or an {@code s3://} URI both work. A failing statement fails
 * the application.
 */
public final class SqlFileRunner {
  private SqlFileRunner() {}

  public static void main(String[] args) throws IOException {
    String file = null;
    Map<String, String> variables = new LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (arg.equals("-f") && i + 1 < args.length) {
        file = args[++i];
      } else if ((arg.equals("-d") || arg.equals("--define") || arg.equals("--hivevar"))
          && i + 1 < args.length) {
        String[] pair = args[++i].split("=", 2);
        variables.put(pair[0], pair.length > 1 ? pair[1] : "");
      } else {
        throw new IllegalArgumentException("SqlFileRunner: unexpected argument " + arg
            + " (expected -f <file> and -d/--define/--hivevar name=value)");
      }
    }
    if (file == null) {
      throw new IllegalArgumentException("SqlFileRunner: no SQL file (-f <file>)");
    }
    SparkSession spark = SparkSession.builder().getOrCreate();
    String text = read(spark, file);
    for (Map.Entry<String, String> v : variables.entrySet()) {
      text = text.replace("${hivevar:" + v.getKey() + "}", v.getValue())
          .replace("${" + v.getKey() + "}", v.getValue());
    }
    for (String statement : statements(text)) {
      // The shell's own formatting (HiveResult): tabs between columns, NULL, Hive's
      // renderings of decimals, dates and nested types.
      Dataset<Row> result = spark.sql(statement);
      for (String line : CollectionConverters.asJava(
          HiveResult$.MODULE$.hiveResultString(result.queryExecution().executedPlan()))) {
        System.out.println(line);
      }
    }
    spark.stop();
  }

  private static String read(SparkSession spark, String file) throws IOException {
    Path path = new Path(file);
    FileSystem fs = path.getFileSystem(spark.sparkContext().hadoopConfiguration());
    try (InputStream in = fs.open(path)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      in.transferTo(out);
      return out.toString(StandardCharsets.UTF_8);
    }
  }

  /**
   * The statements of a SQL file: split at semicolons outside quotes, backticks and
   * comments ({@code --} to the end of the line, and block comments), comments removed,
   * empty statements dropped.
   */
  static List<String> statements(String text) {
    List<String> statements = new ArrayList<>();
    StringBuilder current = new StringBuilder();
    char quote = 0;
    for (int i = 0; i < text.length(); i++) {
      char ch = text.charAt(i);
      char next = i + 1 < text.length() ? text.charAt(i + 1) : 0;
      if (quote != 0) {
        current.append(ch);
        if (ch == '\\' && quote != '`' && next != 0) {
          current.append(next);
          i++;
        } else if (ch == quote) {
          quote = 0;
        }
      } else if (ch == '-' && next == '-') {
        while (i < text.length() && text.charAt(i) != '\n') {
          i++;
        }
        current.append('\n');
      } else if (ch == '/' && next == '*') {
        int end = text.indexOf("*/", i + 2);
        i = end < 0 ? text.length() : end + 1;
        current.append(' ');
      } else if (ch == ';') {
        add(statements, current);
      } else {
        if (ch == '\'' || ch == '"' || ch == '`') {
          quote = ch;
        }
        current.append(ch);
      }
    }
    add(statements, current);
    return statements;
  }

  private static void add(List<String> statements, StringBuilder current) {
    String statement = current.toString().trim();
    if (!statement.isEmpty()) {
      statements.add(statement);
    }
    current.setLength(0);
  }
}
