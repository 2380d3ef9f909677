//! Requests in the shape the JavaScript API speaks (camelCase JSON, catalog item ids),
//! turned into the scorer's types and answered over a loaded catalog. The wasm layer
//! only passes text through; this is where ids are resolved and event types weighted,
//! so it is tested natively.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{Blend, EventWeights};
use super::profile::{Event, Interest, Source, UserQuery, decay, user_query_with_foreign};
use super::rating::{self, Rated};
use super::rank::{RankOptions, Scorer, Terms};
use crate::catalog::CatalogStore;
use crate::error::{Error, ErrorKind, Result};
pub use crate::limits::{MAX_EVENTS, MAX_K};
use crate::limits::{DEFAULT_K, DIVERSITY_RANGE, RATE_EVENT, RATING_RANGE};

/// The answer to a recommend request: the ranked items, whether shards were still
/// missing, and what was ignored on the way (per call, never kept).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendations {
    /// Best first.
    pub results: Vec<Recommendation>,
    /// True while some shards are not loaded: the ranking covered only part of the catalog.
    pub partial: bool,
    /// Events or settings that were ignored, and why.
    pub warnings: Vec<String>,
}

/// One ranked item.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// The catalog's item id.
    pub item_id: String,
    /// The blended score (higher is better).
    pub score: f32,
    /// The item as the catalog holds it ([`CatalogStore::item_json`]).
    pub item: Value,
    /// What in the profile contributed most; `null` when nothing did.
    pub because: Option<Because>,
    /// The rating head's prediction in stars, when the catalog has one and the profile rated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_rating: Option<f32>,
}

/// The profile entry that contributed most to a result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum Because {
    /// An event: the item it was on and its position in the request's `events`.
    Event {
        /// The event's item id.
        item_id: Option<String>,
        /// Index into the request's `events`.
        event: Option<usize>,
        /// Its share of the score.
        contribution: f32,
    },
    /// An event recorded against another catalog: its position in the request's `foreign`.
    Foreign {
        /// Index into the request's `foreign`.
        foreign: usize,
        /// Its share of the score.
        contribution: f32,
    },
    /// A typed interest: its position in the request's `interests`.
    Interest {
        /// Index into the request's `interests`.
        interest: usize,
        /// Its share of the score.
        contribution: f32,
    },
}

/// One event as the page records it.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventIn {
    /// The catalog's item id.
    pub item_id: String,
    /// `view`, `click`, `like`, `dislike`, `rate` or `purchase`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The rating for `rate` (1 to 5), or a custom weight for the others.
    #[serde(default)]
    pub value: Option<f32>,
    /// Age in days.
    #[serde(default)]
    pub age_days: f32,
    /// The scenario the event happened in (one of the catalog's `scenarios`).
    #[serde(default)]
    pub scenario: Option<String>,
}

/// An event the profile recorded against another catalog built with the same encoder:
/// its item is not in this catalog, so what the page kept of it (its embedding) stands in.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForeignEventIn {
    /// The item's embedding in the shared text space (its catalog's, dequantized).
    pub embedding: Vec<f32>,
    /// The event type (`EVENT_TYPES`).
    #[serde(rename = "type")]
    pub kind: String,
    /// As for [`EventIn`].
    #[serde(default)]
    pub value: Option<f32>,
    /// Age in days.
    #[serde(default)]
    pub age_days: f32,
}

/// A typed interest, already encoded by the page's encoder.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InterestIn {
    /// The text's embedding.
    pub embedding: Vec<f32>,
    /// Weight (default 1).
    #[serde(default = "one")]
    pub weight: f32,
    /// Age in days.
    #[serde(default)]
    pub age_days: f32,
}

fn one() -> f32 {
    1.0
}

/// A recommend request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecommendRequest {
    /// The profile's events.
    #[serde(default)]
    pub events: Vec<EventIn>,
    /// The profile's interests.
    #[serde(default)]
    pub interests: Vec<InterestIn>,
    /// The profile's events on other catalogs' items (cross-domain).
    #[serde(default)]
    pub foreign: Vec<ForeignEventIn>,
    /// Results wanted (default 10).
    #[serde(default)]
    pub k: Option<usize>,
    /// MMR strength in `[0, 1]` (default 0).
    #[serde(default)]
    pub diversity: f32,
    /// Item ids never to return, besides the ones acted on.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// The scenario the user is in now (one of the catalog's `scenarios`).
    #[serde(default)]
    pub scenario: Option<String>,
    /// How to rank: `blend` (default: the catalog's tuned blend), `similar` (items
    /// like the profile's: the item-item model and the text, equally weighted, without
    /// the ALS fold-in or popularity, which pull towards what everyone watched; what
    /// `similar(itemId)` uses), `text` (the text term alone: `search(text)`) or
    /// `collaborative` (the ALS term alone: an imported Spark model's own ranking).
    #[serde(default)]
    pub rank_by: Option<String>,
    /// Confidence per event type instead of the catalog's defaults (any subset).
    #[serde(default)]
    pub event_weights: Option<EventWeightsIn>,
}

/// Per-type event confidences a page sets (any subset of `EVENT_TYPES`); the ones left
/// out keep the catalog's. Unknown types and non-finite weights are refused when parsed.
#[derive(Clone, Debug, Default)]
pub struct EventWeightsIn(Vec<(String, f32)>);

impl<'de> Deserialize<'de> for EventWeightsIn {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let given = std::collections::BTreeMap::<String, f32>::deserialize(deserializer)?;
        let custom = EventWeightsIn(given.into_iter().collect());
        custom.apply(&EventWeights::default()).map_err(serde::de::Error::custom)?;
        Ok(custom)
    }
}

impl EventWeightsIn {
    /// `base` with these weights put in; an unknown type or a non-finite weight is refused.
    pub fn apply(&self, base: &EventWeights) -> Result<EventWeights> {
        self.0.iter().try_fold(base.clone(), |w, (kind, weight)| w.with(kind, *weight, "eventWeights"))
    }
}

/// The confidence of an event: its type's weight, or for `rate` the rating above or
/// below the neutral 3 stars times the `rate` weight.
pub fn event_weight(weights: &EventWeights, kind: &str, value: Option<f32>) -> Result<f32> {
    let base = weights
        .of(kind)
        .ok_or_else(|| Error::new(ErrorKind::Input, format!("unknown event type {kind:?}")))?;
    if kind == RATE_EVENT {
        let (lo, hi) = RATING_RANGE;
        let v = value.ok_or_else(|| Error::new(ErrorKind::Input, format!("a {RATE_EVENT} event needs a value ({lo} to {hi})")))?;
        if !(lo..=hi).contains(&v) {
            return Err(Error::new(ErrorKind::Input, format!("rating {v} is outside {lo}..={hi}")));
        }
        return Ok(base * (v - 3.0));
    }
    Ok(match value {
        Some(v) if v.is_finite() => base * v,
        _ => base,
    })
}

/// A request resolved against a catalog: the user vectors, the positions to exclude,
/// and the events' original positions (for `because.event`).
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The user vectors.
    pub query: UserQuery,
    exclude: Vec<u32>,
    positions: Vec<usize>,
    warnings: Vec<String>,
    scenario: Option<usize>,
    blend: Option<Blend>,
    /// The rating head's user vector, when the catalog has one.
    rating: Option<Vec<f32>>,
}

/// Answers `request` over the store's items with `scorer` (built from the same store):
/// `{results: [{itemId, score, item, because}], partial, warnings}`. Events on items the
/// catalog does not have (yet) are skipped with a warning, never an error.
pub fn recommend(store: &CatalogStore, scorer: &Scorer, request: &RecommendRequest) -> Result<Recommendations> {
    let prepared = prepare(store, scorer, request)?;
    let terms = scorer.terms(&[&prepared.query])?.remove(0);
    finish(store, scorer, request, &prepared, &terms)
}

/// The first half of [`recommend`]: checks the request and folds the profile in.
pub fn prepare(store: &CatalogStore, scorer: &Scorer, request: &RecommendRequest) -> Result<Prepared> {
    if [request.events.len(), request.interests.len(), request.foreign.len(), request.exclude.len()].iter().any(|n| *n > MAX_EVENTS) {
        return Err(Error::new(
            ErrorKind::Input,
            format!("a request holds at most {MAX_EVENTS} events, interests, foreign events and exclusions"),
        ));
    }
    let k = request.k.unwrap_or(DEFAULT_K);
    if k > MAX_K {
        return Err(Error::new(ErrorKind::Input, format!("k is {k}; at most {MAX_K}")));
    }
    let (lo, hi) = DIVERSITY_RANGE;
    if !(lo..=hi).contains(&request.diversity) {
        return Err(Error::new(ErrorKind::Input, format!("diversity is {}; it must be from {lo} to {hi}", request.diversity)));
    }
    let mut weights = scorer.params().map(|p| p.event_weights.clone()).unwrap_or_default();
    if let Some(custom) = &request.event_weights {
        weights = custom.apply(&weights)?;
    }
    let mut warnings = Vec::new();
    let names = &store.manifest().scenarios;
    let scenario = match &request.scenario {
        Some(name) => match names.iter().position(|n| n == name) {
            Some(s) if s < scorer.scenarios() => Some(s),
            _ => {
                let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                warnings.push(format!("scenario {name:?} is not one the catalog knows ({known}); ranked without it"));
                None
            }
        },
        None => None,
    };
    let other_weight = scorer.params().map_or(1.0, |p| p.other_scenario_weight);
    let half_life = scorer.params().map_or(0.0, |p| p.half_life_days);
    let blend = match request.rank_by.as_deref() {
        None | Some("blend") => None,
        Some("similar") => {
            // Item to item: the item-item model (or ALS without one) and the text, with
            // neither the ALS fold-in's nor the bias's pull towards what everyone watched.
            let item_item = scorer.params().is_some_and(|p| p.item_rank > 0);
            Some(Blend {
                collaborative: if item_item { 0.0 } else { 1.0 },
                item_item: if item_item { 1.0 } else { 0.0 },
                semantic: 1.0,
                popularity: 0.0,
                scenario: 0.0,
                vae: 0.0,
                interest: super::model::INTEREST_WEIGHT,
            })
        }
        Some("text") => Some(Blend { collaborative: 0.0, item_item: 0.0, semantic: 1.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: super::model::INTEREST_WEIGHT }),
        // The ALS term alone, `<p_u, q_i>`: what the collaborative model (Spark's, when
        // imported) recommends, so a publisher can compare it with the model's own output.
        Some("collaborative") => {
            if scorer.params().is_none_or(|p| p.als_dims == 0) {
                return Err(Error::new(ErrorKind::Input, "rankBy \"collaborative\" needs a catalog with a collaborative side"));
            }
            Some(Blend { collaborative: 1.0, item_item: 0.0, semantic: 0.0, popularity: 0.0, scenario: 0.0, vae: 0.0, interest: 0.0 })
        }
        Some(other) => {
            return Err(Error::new(ErrorKind::Input, format!("rankBy {other:?} is not blend, similar, text or collaborative")));
        }
    };
    let mut events = Vec::new();
    let mut positions = Vec::new();
    let mut rated = Vec::new();
    for (i, e) in request.events.iter().enumerate() {
        let mut weight = event_weight(&weights, &e.kind, e.value).map_err(|err| err.context(format!("event {i}")))?;
        // An event from another scenario than the request's says less about now.
        if scenario.is_some() && e.scenario.as_ref().is_some_and(|s| names.iter().position(|n| n == s) != scenario) {
            weight *= other_weight;
        }
        match store.index_of(&e.item_id) {
            Some(item) => {
                events.push(Event { item, weight, age_days: e.age_days });
                positions.push(i);
                if let (true, Some(value)) = (e.kind == RATE_EVENT, e.value) {
                    rated.push(Rated { item, value, weight: decay(e.age_days, half_life) });
                }
            }
            None => warnings.push(format!("event {i}: item {:?} is not in the loaded catalog; ignored", e.item_id)),
        }
    }
    let rating = match scorer.params() {
        Some(p) => rating::user_rating_vector(scorer.items(), p, &rated)?,
        None => None,
    };
    let interests: Vec<Interest> = request
        .interests
        .iter()
        .map(|it| Interest { embedding: it.embedding.clone(), weight: it.weight, age_days: it.age_days })
        .collect();
    // Beside events on this catalog's own items, a foreign event weighs what the build
    // learned; alone, it is the whole profile and the catalog's foreign blend ranks it.
    let foreign_weight = match scorer.params() {
        Some(p) if !events.is_empty() => p.foreign_weight,
        _ => 1.0,
    };
    let mut foreign = Vec::with_capacity(request.foreign.len());
    for (i, e) in request.foreign.iter().enumerate() {
        let weight = event_weight(&weights, &e.kind, e.value).map_err(|err| err.context(format!("foreign event {i}")))?;
        foreign.push(Interest { embedding: e.embedding.clone(), weight: weight * foreign_weight, age_days: e.age_days });
    }
    let query = user_query_with_foreign(scorer.items(), scorer.params(), &events, &interests, &foreign)?;
    let mut exclude: Vec<u32> = events.iter().map(|e| e.item).collect();
    exclude.extend(request.exclude.iter().filter_map(|id| store.index_of(id)));
    Ok(Prepared { query, exclude, positions, warnings, scenario, blend, rating })
}

/// The second half of [`recommend`]: ranks the term scores and writes the answer.
pub fn finish(
    store: &CatalogStore,
    scorer: &Scorer,
    request: &RecommendRequest,
    prepared: &Prepared,
    terms: &Terms,
) -> Result<Recommendations> {
    let k = request.k.unwrap_or(DEFAULT_K);
    let opts = RankOptions {
        k,
        diversity: request.diversity,
        exclude: prepared.exclude.clone(),
        explain: true,
        scenario: prepared.scenario,
        blend: prepared.blend,
        ..Default::default()
    };
    let ranked = scorer.rank(&prepared.query, terms, &opts)?;
    let results = ranked
        .iter()
        .map(|r| {
            let item = store.item_json(r.index, false);
            let because = r.because.map(|b| match b.source {
                Source::Event { index, item } => Because::Event {
                    item_id: store.item(item).map(|i| i.id.clone()),
                    event: prepared.positions.get(index).copied(),
                    contribution: b.contribution,
                },
                Source::Interest(index) => Because::Interest { interest: index, contribution: b.contribution },
                Source::Foreign(index) => Because::Foreign { foreign: index, contribution: b.contribution },
            });
            let predicted_rating = match (&prepared.rating, scorer.params()) {
                (Some(w), Some(p)) => rating::predict(scorer.items(), p, w, r.index as usize),
                _ => None,
            };
            let item_id = store.item(r.index).map(|i| i.id.clone()).unwrap_or_default();
            Recommendation { item_id, score: r.score, item, because, predicted_rating }
        })
        .collect();
    Ok(Recommendations { results, partial: !store.is_complete(), warnings: prepared.warnings.clone() })
}

/// Parses a request from JSON text.
pub fn parse_request(text: &str) -> Result<RecommendRequest> {
    serde_json::from_str(text).map_err(|e| Error::with_source(ErrorKind::Input, "the recommend request is malformed", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_weigh_as_documented_and_bad_ones_are_refused() {
        let w = EventWeights::default();
        assert_eq!(event_weight(&w, "like", None).unwrap(), 1.0);
        assert_eq!(event_weight(&w, "dislike", None).unwrap(), -1.0);
        assert_eq!(event_weight(&w, "rate", Some(5.0)).unwrap(), 1.0);
        assert_eq!(event_weight(&w, "rate", Some(1.0)).unwrap(), -1.0);
        assert!(event_weight(&w, "rate", None).is_err());
        assert!(event_weight(&w, "stare", None).unwrap_err().to_string().contains("unknown event type"));
    }

    #[test]
    fn a_request_past_the_limits_is_refused_and_unknown_ids_only_warn() {
        use crate::catalog::{CatalogStore, Manifest};
        use crate::scorer::bench::synthetic;
        let manifest =
            Manifest::from_json(include_bytes!("../../tests/fixtures/fuzz-regressions/manifest/ok-no-shards.json")).unwrap();
        let store = CatalogStore::new(manifest);
        let (items, params) = synthetic(30, 4, 2, 8);
        let scorer = Scorer::new(items, Some(params), &burn::prelude::Device::flex()).unwrap();
        let too_many = RecommendRequest { k: Some(MAX_K + 1), ..Default::default() };
        assert!(recommend(&store, &scorer, &too_many).unwrap_err().to_string().contains("at most"));
        let unknown = RecommendRequest {
            events: vec![EventIn { item_id: "nope".into(), kind: "like".into(), value: None, age_days: 0.0, scenario: None }],
            k: Some(500),
            ..Default::default()
        };
        let answer = recommend(&store, &scorer, &unknown).unwrap();
        assert_eq!(answer.warnings.len(), 1);
        assert_eq!(answer.results.len(), 30, "k past the catalog returns every item");
        assert!(!answer.partial);
        let too_diverse = RecommendRequest { diversity: 1.5, ..Default::default() };
        assert!(recommend(&store, &scorer, &too_diverse).unwrap_err().to_string().contains("diversity"));
    }

    #[test]
    fn a_foreign_profile_ranks_with_the_foreign_blend_and_its_reason_names_the_foreign_event() {
        use crate::catalog::{CatalogStore, Manifest};
        use crate::scorer::bench::synthetic;
        let manifest =
            Manifest::from_json(include_bytes!("../../tests/fixtures/fuzz-regressions/manifest/ok-no-shards.json")).unwrap();
        let store = CatalogStore::new(manifest);
        let (items, mut params) = synthetic(30, 4, 2, 8);
        let scorer_with = |params: &crate::scorer::model::ScorerParams| Scorer::new(items.clone(), Some(params.clone()), &burn::prelude::Device::flex()).unwrap();
        let plain = scorer_with(&params);
        params.foreign_blend = Some(Blend { collaborative: 0.0, item_item: 0.0, semantic: 1.0, popularity: 0.0, ..Blend::default() });
        let scorer = scorer_with(&params);
        let embedding = scorer.items().embedding(7);
        let foreign = |kind: &str, embedding: Vec<f32>| RecommendRequest {
            foreign: vec![ForeignEventIn { embedding, kind: kind.into(), value: None, age_days: 2.0 }],
            k: Some(10),
            ..Default::default()
        };
        let from_foreign = recommend(&store, &scorer, &foreign("like", embedding.clone())).unwrap();
        let ids = |r: &Recommendations| r.results.iter().map(|x| x.item_id.clone()).collect::<Vec<_>>();
        let scores = |r: &Recommendations| r.results.iter().map(|x| x.score).collect::<Vec<_>>();
        // Semantic only: the catalog's item with that very text comes first.
        assert_eq!(from_foreign.results[0].score, scores(&from_foreign).into_iter().fold(f32::MIN, f32::max));
        assert!(from_foreign.results.iter().all(|r| matches!(r.because, Some(Because::Foreign { foreign: 0, .. }))));
        let json = serde_json::to_value(&from_foreign.results[0].because).unwrap();
        assert_eq!(json["foreign"], 0, "{json}");
        // Without a foreign blend the catalog's own blend ranks it, differently.
        let with_catalog_blend = recommend(&store, &plain, &foreign("like", embedding.clone())).unwrap();
        assert_ne!(scores(&with_catalog_blend), scores(&from_foreign));
        // A typed interest of the same text also feeds the interest term: not the same list.
        let as_interest = RecommendRequest {
            interests: vec![InterestIn { embedding: embedding.clone(), weight: 1.0, age_days: 2.0 }],
            k: Some(10),
            ..Default::default()
        };
        let from_interest = recommend(&store, &plain, &as_interest).unwrap();
        assert_ne!((ids(&from_interest), scores(&from_interest)), (ids(&with_catalog_blend), scores(&with_catalog_blend)));
        // A dislike pushes the same items down.
        let disliked = recommend(&store, &scorer, &foreign("dislike", embedding.clone())).unwrap();
        assert_ne!(scores(&disliked), scores(&from_foreign));
        let short = recommend(&store, &scorer, &foreign("like", vec![0.1; 3])).unwrap_err().to_string();
        assert!(short.contains("foreign event 0") && short.contains("8 finite"), "{short}");
        let odd = recommend(&store, &scorer, &foreign("stare", embedding)).unwrap_err().to_string();
        assert!(odd.contains("foreign event 0") && odd.contains("stare"), "{odd}");
    }

    #[test]
    fn custom_event_weights_replace_the_catalogs_and_bad_ones_are_refused() {
        let request = parse_request(r#"{"eventWeights": {"view": 0.1, "like": 2}}"#).unwrap();
        let w = request.event_weights.unwrap().apply(&EventWeights::default()).unwrap();
        assert_eq!((w.of("view"), w.of("like"), w.of("click")), (Some(0.1), Some(2.0), EventWeights::default().of("click")));
        assert!(parse_request(r#"{"eventWeights": {"stare": 1}}"#).unwrap_err().to_string().contains("\"stare\" is not an event type"));
        let bad = EventWeightsIn(vec![("view".into(), f32::NAN)]);
        assert!(bad.apply(&EventWeights::default()).unwrap_err().to_string().contains("eventWeights.view"));
    }

    #[test]
    fn requests_with_unknown_fields_or_types_are_refused() {
        assert!(parse_request(r#"{"events": [{"itemId": "1", "type": "like"}], "k": 5}"#).is_ok());
        assert!(parse_request(r#"{"events": [{"itemId": 1, "type": "like"}]}"#).is_err());
        assert!(parse_request(r#"{"colour": "red"}"#).unwrap_err().to_string().contains("malformed"));
    }
}
