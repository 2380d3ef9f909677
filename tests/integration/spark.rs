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
