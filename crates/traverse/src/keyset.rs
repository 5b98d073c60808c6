//! Sequential ID_RANGE traversal: keyset pages, `id > last_id` ordered by id, run one request ahead
//! by [`ReadAhead`](crate::readahead::ReadAhead).

use iptvportal_query::Select;
use serde_json::Value;

use crate::readahead::Pager;
use crate::spec::IdPosition;
use crate::{Chunk, Cursor, Error, TraversalSpec};

pub(crate) struct KeysetPages {
    spec: TraversalSpec,
    query: Select,
    id: IdPosition,
    after: Option<i64>,
}

impl KeysetPages {
    pub(crate) fn new(spec: TraversalSpec, after: Option<i64>) -> Result<Self, Error> {
        let (query, id) = spec.keyset_select()?;
        let query = query.limit(spec.chunk_size);
        Ok(KeysetPages { spec, query, id, after })
    }
}

impl Pager for KeysetPages {
    fn request(&self) -> Result<(Select, String), Error> {
        let mut query = self.query.clone();
        query.where_ = self.spec.filter_after(self.after)?;
        let what = match self.after {
            Some(after) => format!("fetching rows of {} after id {after}", self.spec.table),
            None => format!("fetching the first rows of {}", self.spec.table),
        };
        Ok((query, what))
    }

    fn accept(&mut self, mut rows: Vec<Vec<Value>>, what: &str) -> Result<Option<Chunk>, Error> {
        let Some(last) = self.id.last_id_and_strip(&mut rows, self.after, what)? else {
            return Ok(None);
        };
        self.after = Some(last);
        Ok(Some(Chunk { rows, cursor: Cursor::Id { after: Some(last) } }))
    }
}
