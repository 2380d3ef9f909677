//! The column-mapping flags of commands that read item and interaction files (CSV or TSV
//! whose header does not use the names the readers know).

use std::collections::HashMap;

use localrec::Result;
use localrec::catalog::input::{
    InteractionColumns, Interactions, ItemColumns, SourceItem, detect_interaction_format, detect_item_format,
    parse_interactions_mapped, parse_items_mapped,
};

/// Which items-file columns hold what.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ItemColumnArgs {
    /// The items' id column (default: movieId, item_id, itemId or id).
    #[arg(long)]
    pub id_column: Option<String>,
    /// The items' title column (default: title).
    #[arg(long)]
    pub title_column: Option<String>,
    /// Columns whose values, one per line, are the text to embed (default: text, else
    /// "Title. Genres: ...").
    #[arg(long, value_delimiter = ',')]
    pub text_columns: Vec<String>,
    /// The items' genres column, |-separated (default: genres).
    #[arg(long)]
    pub genres_column: Option<String>,
}

impl ItemColumnArgs {
    /// Parses an items file (`name` for its format and messages) with this mapping.
    pub fn parse(&self, bytes: &[u8], name: &str) -> Result<Vec<SourceItem>> {
        parse_items_mapped(bytes, name, detect_item_format(name, bytes), &self.columns())
    }

    fn columns(&self) -> ItemColumns {
        ItemColumns {
            id: self.id_column.clone(),
            title: self.title_column.clone(),
            text: self.text_columns.clone(),
            genres: self.genres_column.clone(),
        }
    }
}

/// Which interactions-file columns hold what.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct InteractionColumnArgs {
    /// The interactions' user column (default: user_id, userId or user).
    #[arg(long)]
    pub user_column: Option<String>,
    /// The interactions' item column (default: item_id, movieId, itemId or item).
    #[arg(long)]
    pub item_column: Option<String>,
    /// The interactions' rating column (default: rating).
    #[arg(long)]
    pub rating_column: Option<String>,
    /// The interactions' timestamp column, seconds since the epoch (default: timestamp).
    #[arg(long)]
    pub timestamp_column: Option<String>,
}

impl InteractionColumnArgs {
    /// Parses an interactions file against the catalog's `index` with this mapping.
    pub fn parse(&self, bytes: &[u8], name: &str, index: &HashMap<&str, u32>) -> Result<Interactions> {
        parse_interactions_mapped(bytes, name, detect_interaction_format(name, bytes), index, &self.columns())
    }

    fn columns(&self) -> InteractionColumns {
        InteractionColumns {
            user: self.user_column.clone(),
            item: self.item_column.clone(),
            rating: self.rating_column.clone(),
            timestamp: self.timestamp_column.clone(),
        }
    }
}
