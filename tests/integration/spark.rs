//! A real Spark MLlib ALS model (tests/fixtures/spark-als/, made by its make.py with
//! pyspark in local mode) imported through `localrec::publish::spark`: the device's fold-in
//! of each training user, from that user's own ratings, gives back the user factor Spark
//! computed, to float tolerance. That holds only if the fold-in solves Spark's equations:
//! confidence `1 + alpha |r|`, preference 0 for `r <= 0`, and lambda scaled by the number
//! of positive ratings (ALS-WR).

use std::collections::HashMap;
use std::path::PathBuf;

use localrec::publish::spark::{SparkFoldIn, match_items, read_als, read_factors, read_id_map};
use localrec::scorer::imported::{ImportedFactors, RegScaling};
use localrec::scorer::model::{ItemSide, ScorerParams};
use localrec::scorer::profile::{Event, user_query};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spark-als")
}

/// The fixture's estimator settings, as make.py wrote them.
fn fold_in_settings() -> SparkFoldIn {
    let text = std::fs::read_to_string(fixture().join("params.json")).unwrap();
    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
    SparkFoldIn { reg_param: p["regParam"].as_f64().unwrap() as f32, alpha: p["alpha"].as_f64().unwrap() as f32 }
}

#[test]
fn fold_in_of_each_training_user_reproduces_spark_user_factors() {
    let model = read_als(&fixture().join("model")).unwrap();
    assert_eq!(model.rank, 4);
    let ids = read_id_map(&fixture().join("id-map.csv")).unwrap();
    // The catalog: item-0..item-23, in reverse, so catalog order is not Spark's.
    let catalog_ids: Vec<String> = (0..24).rev().map(|i| format!("item-{i}")).collect();
    let index: HashMap<&str, u32> = catalog_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i as u32)).collect();
    let matched = match_items(&model, &ids, &index, catalog_ids.len()).unwrap();
    assert_eq!(matched.matched, 24);
    let k = model.rank;
    let mut q = vec![0.0f32; catalog_ids.len() * k];
    for (dst, row) in q.chunks_exact_mut(k).zip(&matched.rows) {
        dst.copy_from_slice(model.items.row(row.unwrap(), k));
    }
    let settings = fold_in_settings();
    let imported = ImportedFactors {
        factors: k,
        q: q.clone(),
        known: vec![true; catalog_ids.len()],
        reg: settings.reg_param,
        alpha: settings.alpha,
        reg_scaling: RegScaling::PerPositive,
    };
    imported.check(catalog_ids.len()).unwrap();
    let params = ScorerParams {
        reg_scaling: RegScaling::PerPositive,
        ..ScorerParams::untuned(k, 0, imported.reg, imported.alpha, imported.gram())
    };
    let embeddings: Vec<f32> = (0..catalog_ids.len()).flat_map(|_| [1.0f32, 0.0]).collect();
    let items = ItemSide::new(k, q, vec![0.0; catalog_ids.len()], 2, &embeddings);

    let users = read_factors(&fixture().join("model/userFactors"), k).unwrap();
    let ratings = std::fs::read_to_string(fixture().join("ratings.csv")).unwrap();
    let mut events: HashMap<i64, Vec<Event>> = HashMap::new();
    for line in ratings.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let item = index[format!("item-{}", f[1]).as_str()];
        events.entry(f[0].parse().unwrap()).or_default().push(Event {
            item,
            weight: f[2].parse().unwrap(),
            age_days: 0.0,
        });
    }
    assert_eq!(users.ids.len(), 30);
    let mut worst = 0.0f32;
    for (row, user) in users.ids.iter().enumerate() {
        let spark = users.row(row, k);
        let p = user_query(&items, Some(&params), &events[user], &[]).unwrap().p;
        let scale = spark.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
        let diff = p.iter().zip(spark).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        worst = worst.max(diff / scale);
        assert!(diff <= 1e-4 * scale.max(1.0), "user {user}: fold-in {p:?} vs spark {spark:?}");
    }
    eprintln!("worst relative difference to spark's user factors: {worst:e}");

    // The constant lambda of localrec's own trainer does not reproduce Spark's users.
    let constant = ScorerParams { reg_scaling: RegScaling::Constant, ..params };
    let off = users.ids.iter().enumerate().any(|(row, user)| {
        let p = user_query(&items, Some(&constant), &events[user], &[]).unwrap().p;
        p.iter().zip(users.row(row, k)).any(|(a, b)| (a - b).abs() > 1e-3)
    });
    assert!(off, "the test tells the two conventions apart");
}

#[test]
fn a_spark_folder_with_the_wrong_rank_or_class_is_refused_naming_it() {
    let err = read_factors(&fixture().join("model/itemFactors"), 5).unwrap_err();
    assert!(err.to_string().contains("has 4 features (want 5 finite values)"), "{err}");
    let err = read_als(&fixture()).unwrap_err();
    assert!(err.to_string().contains("ALSModel.save folder"), "{err}");
}

#[test]
fn embeddings_read_from_spark_parquet_and_refuse_the_wrong_width() {
    // itemFactors has the shape of an embeddings file: an integer id and a float list.
    let path = fixture().join("model/itemFactors");
    let vectors = localrec::publish::embeddings::read_embeddings(&path, 4).unwrap();
    assert_eq!(vectors.len(), 24);
    assert!(vectors.contains_key("0"), "integer ids are read as their decimal text");
    let err = localrec::publish::embeddings::read_embeddings(&path, 384).unwrap_err();
    assert!(err.to_string().contains("has a 4-dimensional embedding; the encoder makes 384"), "{err}");
}

/// Spark's own scores of every item for `user`: `<x_u, y_i>` with its saved factors.
fn spark_scores(user: i64) -> HashMap<String, f32> {
    let model = read_als(&fixture().join("model")).unwrap();
    let users = read_factors(&fixture().join("model/userFactors"), model.rank).unwrap();
    let row = users.ids.iter().position(|&u| u == user).unwrap();
    let x = users.row(row, model.rank);
    model
        .items
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("item-{id}"), model.items.row(i, model.rank).iter().zip(x).map(|(a, b)| a * b).sum()))
        .collect()
}

#[test]
fn a_catalog_built_on_spark_als_ranks_a_training_user_by_collaborative_as_spark_does() {
    use super::catalog::{localrec, s, scratch, succeed};
    let dir = scratch("spark-als-build");
    std::fs::create_dir_all(&dir).unwrap();
    let topics = ["space", "war", "love", "comedy", "horror", "robots", "dragons", "the sea"];
    let mut items = String::from("id\ttitle\tblurb\n");
    for i in 0..24 {
        items += &format!("item-{i}\tFilm {i}\tA film about {}\n", topics[i % topics.len()]);
    }
    std::fs::write(dir.join("items.tsv"), items).unwrap();
    // The log as a publisher keeps it: their column names, item ids as the catalog's.
    let ratings = std::fs::read_to_string(fixture().join("ratings.csv")).unwrap();
    let mut log = String::from("who,what,stars\n");
    for line in ratings.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        log += &format!("u{},item-{},{}\n", f[0], f[1], f[2]);
    }
    std::fs::write(dir.join("log.csv"), log).unwrap();
    let settings = fold_in_settings();
    let out = dir.join("catalog");
    let model = super::common::model_dir();
    let (reg, alpha) = (settings.reg_param.to_string(), settings.alpha.to_string());
    let report = succeed(&[
        "build", "--items", s(&dir.join("items.tsv")), "--text-columns", "title,blurb",
        "--interactions", s(&dir.join("log.csv")), "--user-column", "who", "--item-column", "what",
        "--rating-column", "stars", "--positive-rating", "0.5", "--item-rank", "2",
        "--spark-als", s(&fixture().join("model")), "--id-map", s(&fixture().join("id-map.csv")),
        "--spark-reg-param", &reg, "--spark-alpha", &alpha,
        "--model", s(&model), "--out", s(&out), "--json",
    ]);
    assert_eq!(report["items"], 24);
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"reg_scaling\": \"per-positive\""), "the params say how to fold in");

    // User 1 of the fixture rated 1 (a like) or -1 (a dislike) only.
    let events: Vec<serde_json::Value> = ratings
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[0] == "1")
        .map(|f| serde_json::json!({"itemId": format!("item-{}", f[1]), "type": if f[2] == "1.0" { "like" } else { "dislike" }}))
        .collect();
    let acted: Vec<String> = events.iter().map(|e| e["itemId"].as_str().unwrap().to_string()).collect();
    let request = serde_json::json!({"events": events, "k": 24, "rankBy": "collaborative"});
    let path = dir.join("request.json");
    std::fs::write(&path, request.to_string()).unwrap();
    let answer = localrec(&["inspect", s(&out), "--recommend", s(&path)]);
    assert!(answer.status.success(), "{}", String::from_utf8_lossy(&answer.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&answer.stdout).unwrap();
    let ours: Vec<String> =
        answer["results"].as_array().unwrap().iter().map(|r| r["itemId"].as_str().unwrap().to_string()).collect();
    let scores = spark_scores(1);
    let mut theirs: Vec<String> = scores.keys().filter(|id| !acted.contains(id)).cloned().collect();
    theirs.sort_by(|a, b| scores[b].total_cmp(&scores[a]));
    assert_eq!(ours, theirs, "rankBy collaborative is Spark's own ranking of the unseen items");
}

#[test]
fn spark_flags_are_checked_before_anything_is_written() {
    use super::catalog::{fail, s, scratch};
    let dir = scratch("spark-als-bad");
    let out = dir.join("catalog");
    let items = fixture().join("id-map.csv");
    let model = super::common::model_dir();
    let err = fail(&["build", "--items", s(&items), "--spark-als", s(&fixture().join("model")), "--model", s(&model), "--out", s(&out)]);
    assert!(err.contains("--id-map"), "{err}");
    let err = fail(&[
        "build", "--items", s(&items), "--id-column", "spark_id", "--title-column", "item_id",
        "--spark-als", s(&fixture().join("model")), "--id-map", s(&fixture().join("id-map.csv")),
        "--model", s(&model), "--out", s(&out),
    ]);
    assert!(err.contains("--spark-als needs --interactions"), "{err}");
    assert!(!out.exists(), "nothing is written");
}
