//! Deterministic generation of the portal's data: one SQLite table per catalog table.
//!
//! Every table draws from its own RNG, seeded from the run's seed and the table's name, so that the
//! rows of one table depend only on the seed and the sizes (changing the size of `terminal` does not
//! reshuffle `subscriber`). Foreign keys pick from the id list of the referenced table, which is
//! itself a pure function of that table's seed and size.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use iptvportal_catalog::time::format_timestamp;
use iptvportal_catalog::{Column, ColumnType, TABLES, Table};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use crate::Error;

/// Bumped whenever the generator's output changes, so that stale database files are regenerated.
const GENERATOR_VERSION: u32 = 1;

/// The table recording how a database file was generated. Its name is not a catalog table, so
/// selects can never reach it.
pub(crate) const META_TABLE: &str = "_sim_meta";

/// What [`ensure_database`] did with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Prepared {
    /// Generated now, for the reason given (for the log).
    Generated(&'static str),
    /// An existing simulator database, kept as it is. `other_params` is what it was generated
    /// with when that is not what was asked for (its rows are served all the same).
    Reused {
        /// The stored generation parameters, when they differ from the requested ones.
        other_params: Option<String>,
    },
}

/// Makes sure `path` holds a simulator database, generating the data for `seed` and `rows` when
/// the file is absent or empty, when `regenerate` is set, or when it was written by another
/// version of the generator or its tables no longer match the catalog (it could not be served).
///
/// An existing, current simulator database is otherwise served as it is, whatever its row counts
/// and whatever `seed` and `rows` say: it may have been changed on purpose
/// ([`mutate`](crate::mutate)). Its change-column indexes are created if missing.
pub(crate) fn ensure_database(
    path: &Path,
    seed: u64,
    rows: &BTreeMap<&'static str, u64>,
    regenerate: bool,
) -> Result<Prepared, Error> {
    let params = generation_params(seed, rows);
    let mut reason = "no database file yet";
    if path.exists() {
        match existing_params(path) {
            Existing::Foreign => return Err(Error::ForeignDatabase { path: path.to_owned() }),
            Existing::Empty => reason = "the file is empty",
            Existing::Matches if regenerate => reason = "regeneration asked for",
            Existing::Matches => match stored_params(path)? {
                Stored::Current(stored) => {
                    ensure_indexes(path)?;
                    let other_params = (stored != params).then_some(stored);
                    return Ok(Prepared::Reused { other_params });
                }
                Stored::Stale => reason = "written by another version of the simulator",
            },
        }
        remove_database_files(path)?;
    }
    // Generate beside the target and rename at the end, so that an interrupted generation never
    // leaves a file that looks complete.
    let partial = sibling(path, ".generating");
    remove_database_files(&partial)?;
    let db_err = |source| Error::Database { path: partial.clone(), source };
    {
        let mut conn = Connection::open(&partial).map_err(db_err)?;
        generate_into(&mut conn, seed, rows, &params).map_err(db_err)?;
        // Closing checkpoints the WAL into the main file and removes it.
        conn.close().map_err(|(_, e)| db_err(e))?;
    }
    std::fs::rename(&partial, path).map_err(|source| Error::Io {
        what: format!("renaming {} to {}", partial.display(), path.display()),
        source,
    })?;
    Ok(Prepared::Generated(reason))
}

enum Existing {
    /// An empty file (or an empty SQLite database): ours to fill.
    Empty,
    /// A file with our meta table.
    Matches,
    /// Something else: never touched.
    Foreign,
}

fn existing_params(path: &Path) -> Existing {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Existing::Empty;
    }
    let Ok(conn) = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Existing::Foreign;
    };
    let tables: Result<Vec<String>, _> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect());
    match tables {
        Ok(t) if t.is_empty() => Existing::Empty,
        Ok(t) if t.iter().any(|n| n == META_TABLE) => Existing::Matches,
        // Unreadable, or tables that are not ours.
        _ => Existing::Foreign,
    }
}

/// A simulator database's generation parameters, judged.
enum Stored {
    /// Written by this generator version, every catalog table with the catalog's columns: the
    /// parameters it was generated with.
    Current(String),
    /// Another generator version, or tables that differ from the catalog.
    Stale,
}

fn stored_params(path: &Path) -> Result<Stored, Error> {
    let db_err = |source| Error::Database { path: path.to_owned(), source };
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db_err)?;
    let stored: Option<String> = conn
        .query_row(&format!("SELECT value FROM {META_TABLE} WHERE key = 'params'"), [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(db_err)?;
    let Some(stored) = stored else { return Ok(Stored::Stale) };
    if stored.split(';').next() != Some(format!("version={GENERATOR_VERSION}").as_str()) {
        return Ok(Stored::Stale);
    }
    for table in TABLES {
        let mut stmt = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{}')", table.name))
            .map_err(db_err)?;
        let columns = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(db_err)?;
        if !columns.iter().map(String::as_str).eq(table.column_names()) {
            return Ok(Stored::Stale);
        }
    }
    Ok(Stored::Current(stored))
}

/// The name of the index on a table's change column.
fn index_name(table: &str, column: &str) -> String {
    format!("{table}_{column}_idx")
}

/// The index statements of the change columns ([`crate::mutate::change_column`]), as a portal's
/// PostgreSQL database would have them, so that `WHERE last_seen > x` is not a full scan.
fn index_statements() -> impl Iterator<Item = (String, String)> {
    TABLES.iter().filter_map(|t| {
        let column = crate::mutate::change_column(t.name)?;
        let name = index_name(t.name, column);
        let sql = format!("CREATE INDEX IF NOT EXISTS \"{name}\" ON \"{}\" (\"{column}\")", t.name);
        Some((name, sql))
    })
}

/// Creates the change-column indexes an existing database lacks (one generated before they
/// existed); opens the file for writing only when one is missing.
fn ensure_indexes(path: &Path) -> Result<(), Error> {
    let db_err = |source| Error::Database { path: path.to_owned(), source };
    let missing: Vec<String> = {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(db_err)?;
        let mut missing = Vec::new();
        for (name, sql) in index_statements() {
            let exists: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = ?1",
                    [&name],
                    |row| row.get(0),
                )
                .map_err(db_err)?;
            if !exists {
                missing.push(sql);
            }
        }
        missing
    };
    if !missing.is_empty() {
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch(&missing.join(";\n")).map_err(db_err)?;
        conn.close().map_err(|(_, e)| db_err(e))?;
    }
    Ok(())
}

/// The string recorded in the meta table: everything that shapes the generated rows.
fn generation_params(seed: u64, rows: &BTreeMap<&'static str, u64>) -> String {
    let mut s = format!("version={GENERATOR_VERSION};seed={seed};rows=");
    for (i, (table, n)) in rows.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{table}={n}");
    }
    s
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Removes a database file and its WAL companions, ignoring files that are not there.
pub(crate) fn remove_database_files(path: &Path) -> Result<(), Error> {
    for p in
        [path.to_owned(), sibling(path, "-wal"), sibling(path, "-shm"), sibling(path, "-journal")]
    {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io { what: format!("removing {}", p.display()), source: e });
            }
            _ => {}
        }
    }
    Ok(())
}

fn sql_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Float => "REAL",
        ColumnType::Text | ColumnType::Timestamp => "TEXT",
        // Booleans are stored as 0/1; the server turns them back into JSON booleans by catalog type.
        _ => "INTEGER",
    }
}

fn generate_into(
    conn: &mut Connection,
    seed: u64,
    rows: &BTreeMap<&'static str, u64>,
    params: &str,
) -> rusqlite::Result<()> {
    // One bulk transaction with no fsyncs: the file is renamed into place only once complete, so a
    // crash here loses nothing that matters.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    tx.execute_batch(&format!(
        "CREATE TABLE {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
    ))?;
    tx.execute(&format!("INSERT INTO {META_TABLE} (key, value) VALUES ('params', ?1)"), [params])?;
    let ids: BTreeMap<&str, Vec<i64>> = TABLES
        .iter()
        .filter(|t| t.id_column.is_some())
        .map(|t| (t.name, generate_ids(seed, t.name, rows.get(t.name).copied().unwrap_or(0))))
        .collect();
    for table in TABLES {
        create_table(&tx, table)?;
        let n = rows.get(table.name).copied().unwrap_or(0);
        insert_rows(&tx, table, seed, n, &ids)?;
    }
    // Built after the rows, which is quicker than keeping them up to date row by row.
    for (_, sql) in index_statements() {
        tx.execute_batch(&sql)?;
    }
    tx.commit()
}

fn create_table(tx: &rusqlite::Transaction<'_>, table: &Table) -> rusqlite::Result<()> {
    let mut sql = format!("CREATE TABLE \"{}\" (", table.name);
    for (i, c) in table.columns.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let _ = write!(sql, "\"{}\" {}", c.name, sql_type(c.ty));
        if table.id_column == Some(c.name) {
            sql.push_str(" PRIMARY KEY");
        } else if !c.nullable {
            sql.push_str(" NOT NULL");
        }
    }
    sql.push(')');
    tx.execute_batch(&sql)
}

fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    table: &Table,
    seed: u64,
    n: u64,
    ids: &BTreeMap<&str, Vec<i64>>,
) -> rusqlite::Result<()> {
    let placeholders = vec!["?"; table.columns.len()].join(", ");
    let mut stmt =
        tx.prepare(&format!("INSERT INTO \"{}\" VALUES ({placeholders})", table.name))?;
    let mut rng = StdRng::seed_from_u64(mix(seed, table.name, 2));
    let own_ids = ids.get(table.name);
    let mut row: Vec<Value> = Vec::with_capacity(table.columns.len());
    for index in 0..n {
        let id = own_ids.and_then(|v| usize::try_from(index).ok().and_then(|i| v.get(i)).copied());
        generate_row(table, &mut RowContext::new(table.name, id, ids), &mut rng, &mut row);
        stmt.execute(rusqlite::params_from_iter(row.iter()))?;
    }
    Ok(())
}

/// Fills `row` with one generated row of `table`, in column order: the id column is `ctx.id`,
/// every other column is drawn from `rng` ([`RowContext::column`]). Generation and the
/// simulator's inserts (`mutate`) share it, so inserted rows look like generated ones.
pub(crate) fn generate_row(
    table: &Table,
    ctx: &mut RowContext<'_>,
    rng: &mut StdRng,
    row: &mut Vec<Value>,
) {
    row.clear();
    for column in table.columns {
        let value = if table.id_column == Some(column.name) {
            Value::Integer(ctx.id.unwrap_or_default())
        } else {
            ctx.column(rng, column)
        };
        row.push(value);
    }
}

/// A seed for one purpose (`stream`) of one table: FNV-1a over the name, then `SplitMix64` finalising.
pub(crate) fn mix(seed: u64, table: &str, stream: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in table.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Ascending ids with gaps, as a real table has after deletions: ~7% of steps skip a few ids and
/// ~0.3% skip a large block.
fn generate_ids(seed: u64, table: &str, n: u64) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(mix(seed, table, 1));
    let mut ids = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let mut id: i64 = 0;
    for _ in 0..n {
        let roll: f64 = rng.random();
        id += if roll < 0.003 {
            rng.random_range(50..500)
        } else if roll < 0.073 {
            rng.random_range(2..5)
        } else {
            1
        };
        ids.push(id);
    }
    ids
}

/// Where foreign keys point: an existing id of the referenced table, drawn with the row's RNG.
pub(crate) trait ForeignIds {
    /// An id of `table`, or `None` when it has no rows (the column then gets 1).
    fn pick(&self, rng: &mut StdRng, table: &str) -> Option<i64>;
}

/// At generation: the id lists of every table, generated before any row.
impl ForeignIds for BTreeMap<&str, Vec<i64>> {
    fn pick(&self, rng: &mut StdRng, table: &str) -> Option<i64> {
        match self.get(table) {
            Some(ids) if !ids.is_empty() => Some(ids[rng.random_range(0..ids.len())]),
            _ => None,
        }
    }
}

/// What a row's later columns need to know about its earlier ones.
pub(crate) struct RowContext<'a> {
    pub(crate) table: &'static str,
    pub(crate) id: Option<i64>,
    pub(crate) ids: &'a dyn ForeignIds,
    /// The row's last generated timestamp (seconds), so `stop` follows `start` and `last_seen`
    /// follows `registered`.
    pub(crate) timestamp: Option<i64>,
    /// `media.protocol`, which shapes its address, port and path.
    pub(crate) protocol: Option<&'static str>,
}

const FIRST_NAMES: &[&str] = &[
    "Александр",
    "Сергей",
    "Дмитрий",
    "Андрей",
    "Алексей",
    "Иван",
    "Михаил",
    "Артём",
    "Фёдор",
    "Ольга",
    "Елена",
    "Наталья",
    "Татьяна",
    "Анна",
    "Мария",
    "Юлия",
    "Айгуль",
    "Руслан",
    "John",
    "Maria",
    "José",
    "Zoë",
    "Ahmed",
    "Łukasz",
];
const MIDDLE_NAMES: &[&str] = &[
    "Александрович",
    "Сергеевич",
    "Иванович",
    "Петрович",
    "Михайлович",
    "Андреевна",
    "Сергеевна",
    "Ивановна",
    "Дмитриевна",
    "Рустамович",
];
const SURNAMES: &[&str] = &[
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозова",
    "Волкова",
    "Лебедева",
    "Хабибуллин",
    "Smith",
    "Müller",
    "García",
    "O'Brien",
];
const LOGINS: &[&str] = &[
    "ivanov",
    "smirnov",
    "kuznetsov",
    "popov",
    "petrov",
    "sokolov",
    "novikov",
    "fedorov",
    "volkova",
    "lebedeva",
    "smith",
    "mueller",
    "garcia",
    "obrien",
    "home",
    "office",
    "kvartira",
];
const CITIES: &[&str] =
    &["Москва", "Санкт-Петербург", "Казань", "Новосибирск", "Екатеринбург", "Нижний Новгород"];
const STREETS: &[&str] =
    &["Ленина", "Мира", "Советская", "Гагарина", "Пушкина", "Садовая", "Молодёжная"];
const MAIL_DOMAINS: &[&str] = &["mail.ru", "yandex.ru", "gmail.com", "example.org", "inbox.ru"];
const CHANNELS: &[&str] = &[
    "Первый канал",
    "Россия 1",
    "Матч!",
    "НТВ",
    "Пятый канал",
    "Россия К",
    "Россия 24",
    "Карусель",
    "ОТР",
    "ТВ Центр",
    "РЕН ТВ",
    "Спас",
    "СТС",
    "Домашний",
    "ТВ-3",
    "Пятница!",
    "Звезда",
    "МИР",
    "ТНТ",
    "Муз-ТВ",
    "Салям",
    "Карибу",
    "Татарстан 24",
    "Беларусь 24",
    "Қазақстан",
    "Discovery Channel",
    "National Geographic",
    "Eurosport 1",
    "BBC World News",
    "CNN International",
    "Cartoon Network",
    "Nickelodeon",
    "MTV Live HD",
    "Da Vinci",
    "Euronews",
    "Animal Planet",
    "TV5Monde",
    "Deutsche Welle",
];
const CHANNEL_SUFFIXES: &[&str] = &["HD", "SD", "+2", "+4", "4K", "International"];
const PROGRAMS: &[&str] = &[
    "Новости",
    "Время",
    "Доброе утро",
    "Поле чудес",
    "Что? Где? Когда?",
    "Спокойной ночи, малыши!",
    "Вести",
    "Футбол. Лига чемпионов",
    "Планета Земля",
    "Кухня",
    "Давай поженимся!",
    "Кто хочет стать миллионером?",
    "Скидки 50%",
    "Ёлки",
    "Top Gear",
    "Friends",
    "The Simpsons",
    "Formula_1 Live",
    "Café Europa",
];
const PACKAGES: &[&str] = &[
    "Базовый",
    "Расширенный",
    "Премиум",
    "Детский",
    "Спорт",
    "Кино",
    "Music",
    "HD Pack",
    "Взрослый 18+",
    "Social",
];
const CATEGORIES: &[(&str, &str)] = &[
    ("Новости", "news"),
    ("Спорт", "sport"),
    ("Фильмы", "movie"),
    ("Сериалы", "series"),
    ("Детям", "kids"),
    ("Музыка", "music"),
    ("Познавательные", "education"),
    ("Развлекательные", "entertainment"),
    ("Документальные", "documentary"),
    ("Юмор", "comedy"),
    ("Кулинария", "cooking"),
    ("Путешествия", "travel"),
    ("Наука", "science"),
    ("Аниме", "anime"),
    ("Ток-шоу", "talk"),
];
const OUIS: &[[u8; 3]] =
    &[[0x00, 0x1A, 0x79], [0x10, 0x27, 0xF5], [0xB8, 0x27, 0xEB], [0x00, 0x26, 0x91]];

/// 2019-01-01 00:00:00 UTC, the start of the generated history.
const EPOCH_2019: i64 = 1_546_300_800;
/// Six years of seconds, the span generated timestamps cover.
const SPAN: i64 = 6 * 365 * 86_400;

fn pick<'s, T: ?Sized>(rng: &mut StdRng, items: &[&'s T]) -> &'s T {
    items[rng.random_range(0..items.len())]
}

/// Money with cents: `units` hundredths, as an exact decimal value.
fn cents(units: i64) -> f64 {
    // One correctly rounded division gives the same double as parsing the decimal text would.
    units as f64 / 100.0
}

/// A MAC address derived from a terminal id: unique per id (the multiplier is odd, so the map is a
/// bijection on 24 bits) yet random-looking. The play log reuses it to point at real terminals.
fn mac_for(id: i64) -> String {
    let oui = OUIS[usize::try_from(id.rem_euclid(4)).unwrap_or(0)];
    let low = id.wrapping_mul(0x009E_3779) & 0x00FF_FFFF;
    let b = low.to_be_bytes();
    format!("{:02X}-{:02X}-{:02X}-{:02X}-{:02X}-{:02X}", oui[0], oui[1], oui[2], b[5], b[6], b[7])
}

impl<'a> RowContext<'a> {
    /// A context for a row of `table` with id `id` (`None` for a table without an id column).
    pub(crate) fn new(table: &'static str, id: Option<i64>, ids: &'a dyn ForeignIds) -> Self {
        RowContext { table, id, ids, timestamp: None, protocol: None }
    }

    fn foreign(&self, rng: &mut StdRng, table: &str) -> Value {
        // An empty referenced table leaves nothing to point at; 1 keeps the column non-null.
        Value::Integer(self.ids.pick(rng, table).unwrap_or(1))
    }

    /// The value of one column of the row: NULL for ~15% of a nullable column's rows, else
    /// [`RowContext::value`]. The id column is not drawn here: it is the row's id.
    pub(crate) fn column(&mut self, rng: &mut StdRng, column: &Column) -> Value {
        if column.nullable && rng.random_bool(0.15) {
            Value::Null
        } else {
            self.value(rng, column.name, column.ty)
        }
    }

    fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one flat table of column heuristics reads best as one match"
    )]
    fn value(&mut self, rng: &mut StdRng, column: &str, ty: ColumnType) -> Value {
        let id = self.id.unwrap_or(0);
        match (self.table, column) {
            (_, "subscriber_id") => self.foreign(rng, "subscriber"),
            (_, "package_id") => self.foreign(rng, "package"),
            (_, "channel_id") => self.foreign(rng, "tv_channel"),
            (_, "program_id") => self.foreign(rng, "tv_program"),
            (_, "category_id") => self.foreign(rng, "tv_category"),
            (_, "domain_id" | "max_terminal") => Value::Integer(rng.random_range(1..=5)),
            (_, "epg_provider_id") => Value::Integer(rng.random_range(1..=3)),
            ("subscriber", "username") => Self::text(format!("{}{id}", pick(rng, LOGINS))),
            ("subscriber", "password") => Self::text(
                (0..10)
                    .map(|_| {
                        char::from(b"abcdefghjkmnpqrstuvwxyz23456789"[rng.random_range(0..31)])
                    })
                    .collect::<String>(),
            ),
            (_, "email") => {
                Self::text(format!("{}{id}@{}", pick(rng, LOGINS), pick(rng, MAIL_DOMAINS)))
            }
            (_, "first_name") => Self::text(pick(rng, FIRST_NAMES)),
            (_, "middle_name") => Self::text(pick(rng, MIDDLE_NAMES)),
            (_, "surname") => Self::text(pick(rng, SURNAMES)),
            (_, "phone") => Self::text(format!(
                "+7 9{:02} {:03}-{:02}-{:02}",
                rng.random_range(0..100),
                rng.random_range(0..1000),
                rng.random_range(0..100),
                rng.random_range(0..100)
            )),
            (_, "address") => Self::text(format!(
                "г. {}, ул. {}, д. {}, кв. {}",
                pick(rng, CITIES),
                pick(rng, STREETS),
                rng.random_range(1..120),
                rng.random_range(1..400)
            )),
            (_, "billing") => Value::Real(cents(rng.random_range(-50_000..500_000))),
            (_, "cost") => Value::Real(cents(rng.random_range(0..100_000))),
            ("subscriber", "type") => {
                Self::text(if rng.random_bool(0.8) { "individual" } else { "corporate" })
            }
            (_, "disabled") => Value::Integer(i64::from(rng.random_bool(0.1))),
            (_, "mac_addr") if self.table == "terminal" => Self::text(mac_for(id)),
            (_, "mac_addr") => match self.foreign(rng, "terminal") {
                Value::Integer(terminal) => Self::text(mac_for(terminal)),
                _ => Self::text(mac_for(1)),
            },
            ("media", "protocol") => {
                let p = if rng.random_bool(0.7) { "udp" } else { "http" };
                self.protocol = Some(p);
                Self::text(p)
            }
            ("media", "inet_addr") if self.protocol == Some("udp") => Self::text(format!(
                "239.{}.{}.{}",
                rng.random_range(0..=255),
                rng.random_range(0..=255),
                rng.random_range(1..=254)
            )),
            (_, "inet_addr") => Self::text(match rng.random_range(0..3) {
                0 => format!(
                    "10.{}.{}.{}",
                    rng.random_range(0..=255),
                    rng.random_range(0..=255),
                    rng.random_range(1..=254)
                ),
                1 => format!("192.168.{}.{}", rng.random_range(0..=255), rng.random_range(1..=254)),
                _ => format!(
                    "85.{}.{}.{}",
                    rng.random_range(0..=255),
                    rng.random_range(0..=255),
                    rng.random_range(1..=254)
                ),
            }),
            ("media", "port") if self.protocol == Some("udp") => {
                Value::Integer(rng.random_range(1234..1300))
            }
            (_, "port") => {
                Value::Integer(*[80, 8080, 8000].get(rng.random_range(0..3)).unwrap_or(&80))
            }
            (_, "path") => Self::text(format!("/live/ch{}/index.m3u8", rng.random_range(1..1000))),
            ("media", "name") => Self::text(format!(
                "{} ({})",
                pick(rng, CHANNELS),
                pick(rng, &["мультикаст", "HLS", "резерв"])
            )),
            ("tv_channel", "name") => {
                let base = pick(rng, CHANNELS);
                Self::text(if rng.random_bool(0.6) {
                    base.to_owned()
                } else {
                    format!("{base} {}", pick(rng, CHANNEL_SUFFIXES))
                })
            }
            ("package", "name") => {
                Self::text(format!("{} {}", pick(rng, PACKAGES), rng.random_range(1..10)))
            }
            ("tv_category", "name") => {
                Self::text(CATEGORIES[usize::try_from(id).unwrap_or(0) % CATEGORIES.len()].0)
            }
            (_, "genre") => {
                Self::text(CATEGORIES[usize::try_from(id).unwrap_or(0) % CATEGORIES.len()].1)
            }
            (_, "is_tv" | "paid" | "enabled") => Value::Integer(i64::from(rng.random_bool(0.8))),
            (_, "business") => Value::Integer(i64::from(rng.random_bool(0.15))),
            (_, "logo") => Self::text(format!("https://static.iptvportal.example/logos/{id}.png")),
            (_, "epg_id") => Self::text(format!("ch{:04}", rng.random_range(1..10_000))),
            (_, "sort") => Value::Integer(rng.random_range(1..1000)),
            (_, "age_rating") => {
                Value::Integer(*[0, 6, 12, 16, 18].get(rng.random_range(0..5)).unwrap_or(&0))
            }
            (_, "title") => Self::text(if rng.random_bool(0.3) {
                format!("{} (серия {})", pick(rng, PROGRAMS), rng.random_range(1..200))
            } else {
                pick(rng, PROGRAMS).to_owned()
            }),
            ("tv_program", "stop") => {
                let start = self.timestamp.unwrap_or(EPOCH_2019);
                Self::text(format_timestamp(start + 300 * rng.random_range(3..36)))
            }
            ("tv_program", "start") => {
                // Broadcasts start on five-minute marks within a four-week EPG window.
                let start = EPOCH_2019 + 5 * 365 * 86_400 + 300 * rng.random_range(0..8064);
                self.timestamp = Some(start);
                Self::text(format_timestamp(start))
            }
            (_, "last_seen") => {
                let from = self.timestamp.unwrap_or(EPOCH_2019);
                Self::text(format_timestamp(
                    from + rng.random_range(0..(EPOCH_2019 + SPAN - from).max(1)),
                ))
            }
            _ => self.by_type(rng, ty),
        }
    }

    fn by_type(&mut self, rng: &mut StdRng, ty: ColumnType) -> Value {
        match ty {
            ColumnType::Float => Value::Real(cents(rng.random_range(0..100_000))),
            ColumnType::Boolean => Value::Integer(i64::from(rng.random_bool(0.3))),
            ColumnType::Text => Self::text(pick(rng, PROGRAMS)),
            ColumnType::Timestamp => {
                let t = EPOCH_2019 + rng.random_range(0..SPAN);
                self.timestamp = Some(t);
                Self::text(format_timestamp(t))
            }
            _ => Value::Integer(rng.random_range(0..1000)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_civil_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00");
        assert_eq!(format_timestamp(EPOCH_2019), "2019-01-01 00:00:00");
        assert_eq!(format_timestamp(1_709_210_096), "2024-02-29 12:34:56");
    }

    #[test]
    fn mac_addresses_are_unique_per_terminal() {
        let macs: std::collections::BTreeSet<String> = (1..20_000).map(mac_for).collect();
        assert_eq!(macs.len(), 19_999);
        assert_eq!(mac_for(1).len(), 17);
    }

    #[test]
    fn cents_are_exact() {
        assert!((cents(12_345) - 123.45).abs() < f64::EPSILON);
        assert!((cents(-50) + 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn ids_ascend_with_gaps() {
        let ids = generate_ids(42, "terminal", 5000);
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(*ids.last().unwrap() > 5000);
    }
}
