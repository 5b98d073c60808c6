//! Sequential ID_RANGE traversal: keyset pages, `id > last_id` ordered by id.

use std::sync::Arc;

use iptvportal_query::Select;

use crate::spec::{IdPosition, fetch};
use crate::{Chunk, Cursor, Error, RowSource, TraversalSpec};

pub(crate) struct KeysetTraversal {
    source: Arc<dyn RowSource>,
    spec: TraversalSpec,
    query: Select,
    id: IdPosition,
    after: Option<i64>,
    done: bool,
}

impl KeysetTraversal {
    pub(crate) fn new(
        source: Arc<dyn RowSource>,
        spec: TraversalSpec,
        after: Option<i64>,
    ) -> Result<Self, Error> {
        let (query, id) = spec.keyset_select()?;
        let query = query.limit(spec.chunk_size);
        Ok(KeysetTraversal { source, spec, query, id, after, done: false })
    }

    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Chunk>, Error> {
        if self.done {
            return Ok(None);
        }
        let mut query = self.query.clone();
        query.where_ = self.spec.filter_after(self.after)?;
        let what = match self.after {
            Some(after) => format!("fetching rows of {} after id {after}", self.spec.table),
            None => format!("fetching the first rows of {}", self.spec.table),
        };
        let mut rows = fetch(self.source.as_ref(), &query, &what).await?;
        self.done = (rows.len() as u64) < self.spec.chunk_size;
        let Some(last) = self.id.last_id_and_strip(&mut rows, self.after, &what)? else {
            return Ok(None);
        };
        self.after = Some(last);
        Ok(Some(Chunk { rows, cursor: Cursor::Id { after: Some(last) } }))
    }
}
