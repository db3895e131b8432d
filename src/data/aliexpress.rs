//! Raw Tianchi AliExpress preparation: `aliexpress_XX_datasets.zip` holds nested zips of
//! user rows (33 columns) and item rows (49 columns) per split; items join their user row
//! on the search id (column 1) and become the processed layout. Streaming: when both files
//! are sorted by id (checked as they are read) the join is a merge in constant memory;
//! otherwise it falls back to a hash join that holds the user rows only.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use super::DataError;

const USER_COLUMNS: usize = 33;
const ITEM_COLUMNS: usize = 49;
/// 1-based columns of the user file that are categorical fields; 9..=31 are numerical.
const USER_CATEGORICAL: [usize; 9] = [2, 3, 4, 5, 6, 7, 8, 32, 33];
/// 1-based columns of the item file that are categorical fields; the rest of 2..=48 are numerical.
const ITEM_CATEGORICAL: [usize; 7] = [19, 34, 35, 36, 40, 41, 42];

/// What one split's preparation wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: u64,
    /// Item rows whose search id has no user row (dropped, as an inner join does).
    pub orphan_items: u64,
    /// Rows per raw label: 0 impression, 1 click, 2 purchase.
    pub labels: [u64; 3],
    pub merge_join: bool,
    pub path: PathBuf,
}

/// The processed header: `search_id, categorical_1..16, numerical_1..63, click, conversion`.
pub fn processed_header() -> String {
    let categorical = USER_CATEGORICAL.len() + ITEM_CATEGORICAL.len();
    let numerical = (USER_COLUMNS - 1 - 2 - 7) + (ITEM_COLUMNS - 2 - ITEM_CATEGORICAL.len());
    let mut names = vec!["search_id".to_string()];
    names.extend((1..=categorical).map(|i| format!("categorical_{i}")));
    names.extend((1..=numerical).map(|i| format!("numerical_{i}")));
    names.extend(["click".into(), "conversion".into()]);
    names.join(",")
}

/// Prepares both splits of `country` from `raw/aliexpress_<COUNTRY>_datasets.zip` into
/// `out/<COUNTRY>/{train,test}.csv`.
pub fn prepare(raw: &Path, country: &str, out: &Path) -> Result<Vec<Summary>, DataError> {
    let upper = country.to_uppercase();
    let archive = raw.join(format!("aliexpress_{upper}_datasets.zip"));
    if !archive.is_file() {
        return Err(DataError::Missing {
            path: archive,
            hint: " (download it from https://tianchi.aliyun.com/dataset/74690)".into(),
        });
    }
    let dir = out.join(&upper);
    std::fs::create_dir_all(&dir).map_err(DataError::io(&dir))?;
    ["train", "test"]
        .iter()
        .map(|split| {
            let lower = country.to_lowercase();
            let member = |kind: &str| format!("{lower}_{kind}_{split}.zip");
            let target = dir.join(format!("{split}.csv"));
            let result = join_split(&archive, &member("user"), &member("item"), &target);
            result.map(|mut s| {
                s.path = target;
                s
            })
        })
        .collect()
}

/// Runs `f` on the lines of the CSV inside the nested zip `member` of `archive`, streamed:
/// the outer entry is decompressed on the fly and the nested zip read without seeking.
fn with_member<T>(
    archive: &Path,
    member: &str,
    f: impl FnOnce(&mut RawReader<'_>) -> Result<T, DataError>,
) -> Result<T, DataError> {
    let corrupt = |e: zip::result::ZipError| DataError::Corrupt {
        path: archive.to_path_buf(),
        message: format!("{member}: {e}"),
    };
    let file = File::open(archive).map_err(DataError::io(archive))?;
    let mut outer = zip::ZipArchive::new(BufReader::new(file)).map_err(corrupt)?;
    let name = outer
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.rsplit('/').next() == Some(member))
        .map(|n| n.into_owned())
        .ok_or_else(|| DataError::Corrupt {
            path: archive.to_path_buf(),
            message: format!("it has no member {member}"),
        })?;
    let mut entry = outer.by_name(&name).map_err(corrupt)?;
    let inner = zip::read::read_zipfile_from_stream(&mut entry)
        .map_err(corrupt)?
        .ok_or_else(|| corrupt(zip::result::ZipError::FileNotFound))?;
    let csv_name = inner.name().map(|n| n.into_owned()).unwrap_or_default();
    let label = format!("{}:{name}:{csv_name}", archive.display());
    let mut lines = BufReader::with_capacity(1 << 20, inner);
    f(&mut RawReader {
        label,
        lines: &mut lines,
        line: 0,
        text: String::new(),
    })
}

/// Rows of a headerless raw CSV: (search id, the row's columns).
struct RawReader<'a> {
    label: String,
    lines: &'a mut dyn BufRead,
    line: usize,
    text: String,
}

impl RawReader<'_> {
    fn error(&self, message: String) -> DataError {
        DataError::Row {
            path: PathBuf::from(&self.label),
            line: self.line,
            message,
        }
    }

    fn next(&mut self, columns: usize) -> Result<Option<(u64, Vec<String>)>, DataError> {
        loop {
            self.text.clear();
            let read = self
                .lines
                .read_line(&mut self.text)
                .map_err(|e| self.error(e.to_string()))?;
            if read == 0 {
                return Ok(None);
            }
            self.line += 1;
            let line = self.text.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                continue;
            }
            let fields: Vec<String> = line.split(',').map(|f| f.trim().to_string()).collect();
            if fields.len() != columns {
                return Err(self.error(format!(
                    "expected {columns} columns, found {}",
                    fields.len()
                )));
            }
            let id = fields[0].parse().map_err(|_| {
                self.error(format!(
                    "search id `{}` is not a non-negative integer",
                    fields[0]
                ))
            })?;
            return Ok(Some((id, fields)));
        }
    }
}

/// The user row of a search id, found by merge (sorted streams) or by hash.
trait Users {
    /// `Err(None)`: the streams are not sorted, so a merge cannot continue.
    fn find(&mut self, id: u64) -> Result<Option<&[String]>, Option<DataError>>;
}

struct MergeUsers<'r, 'a> {
    reader: &'r mut RawReader<'a>,
    current: Option<(u64, Vec<String>)>,
    last_item: Option<u64>,
}

impl Users for MergeUsers<'_, '_> {
    fn find(&mut self, id: u64) -> Result<Option<&[String]>, Option<DataError>> {
        if self.last_item.is_some_and(|last| id < last) {
            return Err(None);
        }
        self.last_item = Some(id);
        while let Some((user, _)) = &self.current {
            if *user >= id {
                break;
            }
            let previous = *user;
            self.current = self.reader.next(USER_COLUMNS).map_err(Some)?;
            if self
                .current
                .as_ref()
                .is_some_and(|(next, _)| *next <= previous)
            {
                return Err(None);
            }
        }
        Ok(self
            .current
            .as_ref()
            .filter(|(user, _)| *user == id)
            .map(|(_, f)| f.as_slice()))
    }
}

struct HashUsers(HashMap<u64, Vec<String>>);

impl Users for HashUsers {
    fn find(&mut self, id: u64) -> Result<Option<&[String]>, Option<DataError>> {
        Ok(self.0.get(&id).map(Vec::as_slice))
    }
}

fn join_split(
    archive: &Path,
    users: &str,
    items: &str,
    target: &Path,
) -> Result<Summary, DataError> {
    crate::whole_file::replace(target, |tmp| {
        let merged = with_member(archive, users, |user_rows| {
            let current = user_rows.next(USER_COLUMNS)?;
            let mut merge = MergeUsers {
                reader: user_rows,
                current,
                last_item: None,
            };
            with_member(archive, items, |item_rows| {
                write_joined(item_rows, &mut merge, tmp)
            })
        })?;
        if let Some(summary) = merged {
            return Ok(summary);
        }
        tracing::warn!(archive = %archive.display(), "raw rows are not sorted by search id: joining through a hash table of the user rows");
        let mut table = HashMap::new();
        with_member(archive, users, |user_rows| {
            while let Some((id, fields)) = user_rows.next(USER_COLUMNS)? {
                table.insert(id, fields);
            }
            Ok(())
        })?;
        let mut hash = HashUsers(table);
        let summary = with_member(archive, items, |item_rows| {
            write_joined(item_rows, &mut hash, tmp)
        })?;
        Ok(Summary {
            merge_join: false,
            ..summary.expect("a hash join never needs sorted input")
        })
    })
}

/// Writes the joined rows to `tmp`; `Ok(None)` when a merge finds unsorted input.
fn write_joined(
    items: &mut RawReader<'_>,
    users: &mut dyn Users,
    tmp: &Path,
) -> Result<Option<Summary>, DataError> {
    let file = File::create(tmp).map_err(DataError::io(tmp))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let io = |e| DataError::io(tmp)(e);
    writeln!(out, "{}", processed_header()).map_err(io)?;
    let mut summary = Summary {
        merge_join: true,
        ..Summary::default()
    };
    while let Some((id, item)) = items.next(ITEM_COLUMNS)? {
        let label: usize = match item[ITEM_COLUMNS - 1].as_str() {
            "0" => 0,
            "1" => 1,
            "2" => 2,
            other => {
                return Err(items.error(format!(
                    "label (column 49) must be 0, 1 or 2, found `{other}`"
                )));
            }
        };
        let user = match users.find(id) {
            Ok(Some(user)) => user,
            Ok(None) => {
                summary.orphan_items += 1;
                continue;
            }
            Err(None) => return Ok(None),
            Err(Some(e)) => return Err(e),
        };
        let mut row = Vec::with_capacity(82);
        row.push(item[0].as_str());
        row.extend(USER_CATEGORICAL.iter().map(|&c| user[c - 1].as_str()));
        row.extend(ITEM_CATEGORICAL.iter().map(|&c| item[c - 1].as_str()));
        row.extend((9..=31).map(|c| user[c - 1].as_str()));
        row.extend(
            (2..=48)
                .filter(|c| !ITEM_CATEGORICAL.contains(c))
                .map(|c| item[c - 1].as_str()),
        );
        row.push(if label >= 1 { "1" } else { "0" });
        row.push(if label == 2 { "1" } else { "0" });
        writeln!(out, "{}", row.join(",")).map_err(io)?;
        summary.rows += 1;
        summary.labels[label] += 1;
    }
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(Some(summary))
}
