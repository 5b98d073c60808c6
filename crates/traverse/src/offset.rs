//! OFFSET traversal: `limit`/`offset` pages in a fixed order.

use std::sync::Arc;

use iptvportal_query::{OrderBy, Select};

use crate::spec::fetch;
use crate::{Chunk, Cursor, Error, RowSource, TraversalSpec};

pub(crate) struct OffsetTraversal {
    source: Arc<dyn RowSource>,
    query: Select,
    chunk_size: u64,
    offset: u64,
    done: bool,
}

impl OffsetTraversal {
    pub(crate) fn new(
        source: Arc<dyn RowSource>,
        spec: &TraversalSpec,
        offset: u64,
    ) -> Result<Self, Error> {
        let mut query = spec.base_select()?;
        query.where_.clone_from(&spec.filter);
        // Paging without a total order could skip or repeat rows between pages.
        query.order_by = if spec.order_by.is_empty() {
            vec![OrderBy::asc(spec.id_column.as_str())?]
        } else {
            spec.order_by.clone()
        };
        Ok(OffsetTraversal { source, query, chunk_size: spec.chunk_size, offset, done: false })
    }

    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Chunk>, Error> {
        if self.done {
            return Ok(None);
        }
        let query = self.query.clone().limit(self.chunk_size).offset(self.offset);
        let what = format!("fetching rows of {} at offset {}", query.from.table.name, self.offset);
        let rows = fetch(self.source.as_ref(), &query, &what).await?;
        // A short page is the last one: no extra empty request to find the end.
        self.done = (rows.len() as u64) < self.chunk_size;
        if rows.is_empty() {
            return Ok(None);
        }
        self.offset += rows.len() as u64;
        Ok(Some(Chunk { rows, cursor: Cursor::Offset { offset: self.offset } }))
    }
}
