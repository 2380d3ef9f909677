//! Two domains of one items file, for the cross-domain protocol (`localrec eval
//! --cross-domain`) and for building the two catalogs of a cross-domain test (`localrec
//! domains`): a site's two departments, stood in for by two halves of the genre list.

use super::input::SourceItem;
use crate::error::{Error, ErrorKind, Result};

/// Names of the domain splits `--cross-domain` and `localrec domains` accept.
pub const DOMAIN_SPLITS: [&str; 1] = ["genre-halves"];

/// Each item's domain and the genres that make each.
#[derive(Clone, Debug, PartialEq)]
pub struct Domains {
    /// First genres of domain A (a prefix of the sorted genre list).
    pub a_genres: Vec<String>,
    /// First genres of domain B (the rest).
    pub b_genres: Vec<String>,
    /// Per item: `Some(false)` in A, `Some(true)` in B, `None` without a genre.
    pub in_b: Vec<Option<bool>>,
}

impl Domains {
    /// Indices of the items in domain B (`true`) or A (`false`).
    pub fn items(&self, b: bool) -> Vec<u32> {
        (0..self.in_b.len() as u32).filter(|&i| self.in_b[i as usize] == Some(b)).collect()
    }
}

/// The genre-halves split: an item belongs to the domain of its first genre as listed;
/// the distinct first genres, sorted, are cut where the two sides' item counts are
/// closest (the first such cut), A being the genres before the cut. Items without a
/// genre are in neither.
pub fn genre_halves(items: &[SourceItem]) -> Result<Domains> {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for it in items {
        if let Some(g) = it.genres.first() {
            *counts.entry(g.as_str()).or_default() += 1;
        }
    }
    if counts.len() < 2 {
        return Err(Error::new(
            ErrorKind::Input,
            format!("genre-halves needs items of at least two first genres; the items have {}", counts.len()),
        ));
    }
    let total: usize = counts.values().sum();
    let (mut prefix, mut best) = (0usize, (usize::MAX, 0usize));
    for (cut, n) in counts.values().enumerate().take(counts.len() - 1) {
        prefix += n;
        let gap = prefix.abs_diff(total - prefix);
        if gap < best.0 {
            best = (gap, cut + 1);
        }
    }
    let genres: Vec<String> = counts.keys().map(|g| g.to_string()).collect();
    let (a, b) = genres.split_at(best.1);
    let in_b = items.iter().map(|it| it.genres.first().map(|g| b.contains(g))).collect();
    Ok(Domains { a_genres: a.to_vec(), b_genres: b.to_vec(), in_b })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, genres: &[&str]) -> SourceItem {
        SourceItem {
            id: id.into(),
            title: id.into(),
            text: None,
            genres: genres.iter().map(|g| g.to_string()).collect(),
            meta: Default::default(),
            line: 1,
        }
    }

    #[test]
    fn genre_halves_cut_the_sorted_first_genres_where_the_sides_are_most_even() {
        let items = [
            item("1", &["Drama", "Action"]),
            item("2", &["Action"]),
            item("3", &["Comedy", "Romance"]),
            item("4", &["Romance"]),
            item("5", &["Western"]),
            item("6", &[]),
            item("7", &["Action", "Western"]),
        ];
        // First genres sorted: Action 2, Comedy 1, Drama 1, Romance 1, Western 1; cuts give 2|4, 3|3, 4|2, 5|1.
        let d = genre_halves(&items).unwrap();
        assert_eq!(d.a_genres, ["Action", "Comedy"]);
        assert_eq!(d.b_genres, ["Drama", "Romance", "Western"]);
        assert_eq!(d.in_b, [Some(true), Some(false), Some(false), Some(true), Some(true), None, Some(false)]);
        assert_eq!(d.items(false), [1, 2, 6]);
        assert_eq!(d.items(true), [0, 3, 4]);
    }

    #[test]
    fn one_first_genre_cannot_be_halved() {
        let err = genre_halves(&[item("1", &["Drama"]), item("2", &["Drama", "Comedy"])]).unwrap_err();
        assert!(err.to_string().contains("at least two first genres"), "{err}");
    }
}
