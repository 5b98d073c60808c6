//! OFFSET traversal: `limit`/`offset` pages in a fixed order, run one request ahead by
//! [`ReadAhead`](crate::readahead::ReadAhead).

use iptvportal_query::{OrderBy, Select};
use serde_json::Value;

use crate::readahead::Pager;
use crate::{Chunk, Cursor, Error, TraversalSpec};

pub(crate) struct OffsetPages {
    query: Select,
    chunk_size: u64,
    offset: u64,
}

impl OffsetPages {
    pub(crate) fn new(spec: &TraversalSpec, offset: u64) -> Result<Self, Error> {
        let mut query = spec.base_select()?;
        query.where_.clone_from(&spec.filter);
        // Paging without a total order could skip or repeat rows between pages.
        query.order_by = if spec.order_by.is_empty() {
            vec![OrderBy::asc(spec.id_column.as_str())?]
        } else {
            spec.order_by.clone()
        };
        Ok(OffsetPages { query, chunk_size: spec.chunk_size, offset })
    }
}

impl Pager for OffsetPages {
    fn request(&self) -> Result<(Select, String), Error> {
        let query = self.query.clone().limit(self.chunk_size).offset(self.offset);
        let what = format!("fetching rows of {} at offset {}", query.from.table.name, self.offset);
        Ok((query, what))
    }

    fn accept(&mut self, rows: Vec<Vec<Value>>, _what: &str) -> Result<Option<Chunk>, Error> {
        if rows.is_empty() {
            return Ok(None);
        }
        self.offset += rows.len() as u64;
        Ok(Some(Chunk { rows, cursor: Cursor::Offset { offset: self.offset } }))
    }
}
