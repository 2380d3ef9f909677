"""The reference Spark job of a localrec catalog: what a publisher runs on their cluster.

    spark-submit examples/spark/localrec_job.py \
        --items movies.csv --interactions ratings.csv.gz --work /data/localrec-work \
        --out catalog/ --localrec /opt/localrec/bin/localrec --model /opt/localrec/all-MiniLM-L6-v2

1. reads the items (a CSV with a header, as `localrec build --items` reads it) and the
   interactions (user, item, rating[, timestamp]);
2. trains ALS with MLlib (implicitPrefs: every rating at or above --positive-rating is one
   positive, confidence 1 + alpha) on integer ids, and saves it with ALSModel.save, beside
   the id map from Spark's item ids to the catalog's (Parquet: spark_id, item_id);
3. encodes the item texts on the executors: each partition is piped through
   `localrec embed --items` (CSV in, JSON lines {"id", "embedding"} out), and the vectors
   are written as Parquet (id: string, embedding: array<float>);
4. ends with one `localrec build` on the driver that imports both (--spark-als, --id-map,
   --embeddings) and trains the rest of the collaborative side from the log.

Every executor needs the localrec binary and the model folder at the paths given (ship them
with --archives, or install them on the nodes). Nothing else is localrec-specific: the same
script runs in local mode (`--master local[2]`, as `make spark-catalog` does) and on a cluster.
"""

import argparse
import csv
import io
import json
import os
import shlex
import subprocess
import sys
import time

from pyspark.ml.recommendation import ALS
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", required=True, help="items CSV with a header (MovieLens movies.csv, or id,title[,text][,genres])")
    p.add_argument("--interactions", required=True, help="interactions CSV with a header: user, item[, rating][, timestamp]")
    p.add_argument("--work", required=True, help="folder for the ALS model, the id map and the embeddings")
    p.add_argument("--out", required=True, help="the catalog folder `localrec build` writes")
    p.add_argument("--localrec", default="localrec", help="the localrec binary (on every executor)")
    p.add_argument("--model", required=True, help="the encoder's model folder (on every executor)")
    p.add_argument("--master", default=None, help="Spark master when not run by spark-submit, e.g. local[2]")
    p.add_argument("--partitions", type=int, default=0, help="item partitions to encode (default: 2 per core)")
    p.add_argument("--threads-per-task", type=int, default=1, help="encoder threads of each `localrec embed`")
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--reg-param", type=float, default=0.05)
    p.add_argument("--alpha", type=float, default=10.0)
    p.add_argument("--positive-rating", type=float, default=4.0)
    for flag in ("--id-column", "--title-column", "--text-columns", "--genres-column"):
        p.add_argument(flag, default=None, help=f"the items' column mapping: `localrec build {flag}`")
    p.add_argument("--item-column", default=None, help="the interactions' item column (default: movieId, item_id or item)")
    p.add_argument("--user-column", default=None, help="the interactions' user column (default: userId, user_id or user)")
    p.add_argument("build_args", nargs="*", help="more `localrec build` flags, after --")
    return p.parse_args(argv)


def pick(columns, given, names, what):
    if given:
        return given
    for name in names:
        if name in columns:
            return name
    sys.exit(f"localrec_job: the {what} have no column among {names}; name it with --{what[:-1]}-column")


def log(message):
    print(f"localrec_job: {message}", file=sys.stderr, flush=True)


def write_check(spark, model, train, id_map, path):
    """Spark's own top items for one training user (20 to 60 positives, the lowest id), with
    that user's positives: a page that likes those items and ranks with
    rankBy: 'collaborative' must list the same items (the fold-in reproduces the user's
    factors), which `make test`'s browser test checks and a publisher can repeat."""
    picked = train.groupBy("user").count().where(F.col("count").between(20, 60)).orderBy("user").limit(1).collect()
    if not picked:
        return
    user = picked[0]["user"]
    names = id_map.select(F.col("spark_id").alias("item"), "item_id")
    liked = [r["item_id"] for r in train.where(F.col("user") == user).join(names, "item").orderBy("item_id").collect()]
    subset = spark.createDataFrame([(user,)], ["user"])
    recs = model.recommendForUserSubset(subset, len(liked) + 50).collect()[0]["recommendations"]
    top = spark.createDataFrame([(int(r["item"]), float(r["rating"]), i) for i, r in enumerate(recs)], ["item", "score", "rank"])
    ranked = top.join(names, "item").orderBy("rank").collect()
    unseen = [(r["item_id"], r["score"]) for r in ranked if r["item_id"] not in set(liked)]
    with open(path, "w") as f:
        json.dump({"liked": liked, "spark_top": [i for i, _ in unseen[:20]],
                   "spark_scores": [s for _, s in unseen[:20]]}, f)


def main(argv):
    args = parse_args(argv)
    started = time.time()
    builder = SparkSession.builder.appName("localrec-catalog")
    if args.master:
        builder = builder.master(args.master)
    # No console progress bars: the job's own lines and localrec's say how far it is.
    spark = builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    os.makedirs(args.work, exist_ok=True)
    timings = {}

    # 1. Items as the build reads them: CSV, every column a string.
    items = spark.read.csv(args.items, header=True, quote='"', escape='"', multiLine=False)
    item_id = pick(items.columns, args.id_column, ["movieId", "item_id", "itemId", "id"], "items")
    # The same mapping for `localrec embed --items` and `localrec build`.
    mapping = []
    for name in ("id_column", "title_column", "text_columns", "genres_column"):
        if getattr(args, name):
            mapping += ["--" + name.replace("_", "-"), getattr(args, name)]
    log(f"{items.count()} items from {args.items}")

    # 2. ALS on integer ids: Spark's ids are positions in the item and user lists.
    t = time.time()
    ratings = spark.read.csv(args.interactions, header=True, inferSchema=False)
    user_col = pick(ratings.columns, args.user_column, ["userId", "user_id", "user"], "users")
    item_col = pick(ratings.columns, args.item_column, ["movieId", "item_id", "item"], "items")
    positives = ratings
    if "rating" in ratings.columns:
        positives = ratings.where(F.col("rating").cast("double") >= args.positive_rating)
    positives = positives.select(F.col(user_col).alias("user_key"), F.col(item_col).alias("item_id")).distinct()
    id_map = items.select(F.col(item_id).alias("item_id")).rdd.map(lambda r: r[0]).zipWithIndex() \
        .map(lambda p: (int(p[1]), p[0])).toDF(["spark_id", "item_id"])
    users = positives.select("user_key").distinct().rdd.map(lambda r: r[0]).zipWithIndex() \
        .map(lambda p: (p[0], int(p[1]))).toDF(["user_key", "user"])
    train = positives.join(id_map, "item_id").join(users, "user_key") \
        .select(F.col("user").cast("int"), F.col("spark_id").cast("int").alias("item"), F.lit(1.0).alias("rating"))
    als = ALS(rank=args.rank, maxIter=args.max_iter, regParam=args.reg_param, alpha=args.alpha,
              implicitPrefs=True, userCol="user", itemCol="item", ratingCol="rating", seed=42)
    model = als.fit(train)
    als_dir = os.path.join(args.work, "als")
    model.write().overwrite().save(als_dir)
    map_dir = os.path.join(args.work, "id-map")
    id_map.select(F.col("spark_id").cast("int"), "item_id").write.mode("overwrite").parquet(map_dir)
    write_check(spark, model, train, id_map, os.path.join(args.work, "spark-check.json"))
    timings["als_seconds"] = time.time() - t
    log(f"ALS rank {args.rank}, {args.max_iter} iterations on {train.count()} positives: {timings['als_seconds']:.1f} s")

    # 3. Item texts encoded on the executors, one `localrec embed --items` per partition.
    t = time.time()
    header = items.columns
    parallelism = args.partitions or 2 * spark.sparkContext.defaultParallelism

    def to_csv(rows):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        yield buf.getvalue().rstrip("\n")
        for row in rows:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["" if v is None else v for v in row])
            yield buf.getvalue().rstrip("\n")

    env = {"RAYON_NUM_THREADS": str(args.threads_per_task)}
    command = [args.localrec, "embed", "--items", "--model", args.model] + mapping
    lines = items.rdd.repartition(parallelism).mapPartitions(to_csv).pipe(" ".join(map(shlex.quote, command)), env=env)
    schema = T.StructType([T.StructField("id", T.StringType(), False),
                           T.StructField("embedding", T.ArrayType(T.FloatType(), False), False)])
    vectors = lines.map(json.loads).map(lambda o: (str(o["id"]), [float(v) for v in o["embedding"]]))
    emb_dir = os.path.join(args.work, "embeddings")
    spark.createDataFrame(vectors, schema).write.mode("overwrite").parquet(emb_dir)
    timings["embed_seconds"] = time.time() - t
    count = spark.read.parquet(emb_dir).count()
    log(f"encoded {count} items on {parallelism} partitions in {timings['embed_seconds']:.1f} s "
        f"({count / timings['embed_seconds']:.1f} items/s)")
    spark.stop()

    # 4. One build on the driver imports both.
    t = time.time()
    build = [args.localrec, "build", "--items", args.items, "--interactions", args.interactions,
             "--model", args.model, "--out", args.out,
             "--spark-als", als_dir, "--id-map", map_dir,
             "--spark-reg-param", str(args.reg_param), "--spark-alpha", str(args.alpha),
             "--positive-rating", str(args.positive_rating),
             "--embeddings", emb_dir] + mapping + args.build_args
    for flag, value in (("--user-column", args.user_column), ("--item-column", args.item_column)):
        if value:
            build += [flag, value]
    log(" ".join(build))
    subprocess.run(build, check=True)
    timings["build_seconds"] = time.time() - t
    timings["total_seconds"] = time.time() - started
    timings["items"] = count
    with open(os.path.join(args.work, "timings.json"), "w") as f:
        json.dump(timings, f)
    log(f"done in {timings['total_seconds']:.1f} s: {json.dumps(timings)}")


if __name__ == "__main__":
    main(sys.argv[1:])
