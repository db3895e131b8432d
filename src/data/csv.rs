//! CSV reading for any declared schema: the header must match the schema's columns, every
//! value is checked (errors name file, line and column), and the rows are parsed in
//! parallel chunks straight into a [`TableWriter`], so memory stays bounded.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::decimal::{self, Separators};
use super::schema::{Oov, Schema};
use super::table::{Header, Rows, TableWriter, ordered};
use super::{DataError, Table};

/// Bytes of CSV text parsed per task.
const CHUNK_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Copy)]
enum Column {
    Id,
    Categorical(usize),
    Numerical,
    Label(usize),
}

struct Layout {
    names: Vec<String>,
    columns: Vec<Column>,
    cardinalities: Vec<u32>,
    has_id: bool,
    fields: usize,
    numerical: usize,
    labels: usize,
    cascade: bool,
    clamp: bool,
}

impl Layout {
    fn new(schema: &Schema) -> Self {
        let fields = schema.categorical.cardinalities.len();
        let numerical = schema.numerical_names().len();
        let labels = schema.labels.len();
        let columns = schema
            .id
            .iter()
            .map(|_| Column::Id)
            .chain((0..fields).map(Column::Categorical))
            .chain((0..numerical).map(|_| Column::Numerical))
            .chain((0..labels).map(Column::Label))
            .collect();
        Layout {
            names: schema.header(),
            columns,
            cardinalities: schema.categorical.cardinalities.clone(),
            has_id: schema.id.is_some(),
            fields,
            numerical,
            labels,
            cascade: schema.cascade,
            clamp: schema.oov == Oov::Clamp,
        }
    }
}

/// A CSV file of a schema, memory-mapped, its header checked, ready to parse.
pub struct CsvFile {
    path: PathBuf,
    map: memmap2::Mmap,
    body: usize,
    layout: Layout,
}

impl CsvFile {
    /// Opens `csv` and checks its header against `schema`'s columns.
    pub fn open(csv: &Path, schema: &Schema) -> Result<Self, DataError> {
        let layout = Layout::new(schema);
        let file = std::fs::File::open(csv).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing {
                path: csv.to_path_buf(),
                hint: String::new(),
            },
            _ => DataError::io(csv)(e),
        })?;
        let len = file.metadata().map_err(DataError::io(csv))?.len();
        if len == 0 {
            return Err(DataError::Empty {
                path: csv.to_path_buf(),
            });
        }
        // SAFETY: the mapping is read-only and lives only as long as this parse; a source
        // modified meanwhile gives a table whose fingerprint no longer matches, so it is
        // rebuilt.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(DataError::io(csv))?;
        let header_end = memchr::memchr(b'\n', &map).unwrap_or(map.len());
        check_header(csv, &map[..header_end], &layout)?;
        Ok(CsvFile {
            path: csv.to_path_buf(),
            body: (header_end + 1).min(map.len()),
            map,
            layout,
        })
    }

    /// The rows after the header, split into pieces that end at line ends.
    fn chunks(&self) -> Vec<&[u8]> {
        split_lines(&self.map[self.body..], CHUNK_BYTES)
    }

    /// The number of lines after the header: at least the number of rows.
    pub fn lines(&self) -> usize {
        use rayon::prelude::*;
        let newlines: usize = self
            .chunks()
            .par_iter()
            .map(|chunk| memchr::memchr_iter(b'\n', chunk).count())
            .sum();
        newlines + 1
    }

    /// Parses every row, in parallel, handing the parsed pieces to `consume` in file order;
    /// returns the number of rows. The first bad value stops it with an error naming the
    /// file, line and column.
    pub fn parse(
        &self,
        mut consume: impl FnMut(Rows) -> Result<(), DataError> + Send,
    ) -> Result<usize, DataError> {
        let mut line = 2;
        let mut rows = 0;
        ordered(
            &self.chunks(),
            |chunk| parse_chunk(chunk, &self.layout),
            |parsed| match parsed {
                Ok((parsed, lines)) => {
                    line += lines;
                    rows += parsed.labels.len() / self.layout.labels;
                    consume(parsed)
                }
                Err((local, message)) => Err(DataError::Row {
                    path: self.path.clone(),
                    line: line + local,
                    message,
                }),
            },
        )?;
        if rows == 0 {
            return Err(DataError::Empty {
                path: self.path.clone(),
            });
        }
        Ok(rows)
    }
}

/// Parses `csv` (validated against `schema`) into a table at `out`; `source` and
/// `schema_hash` go into the table's header for staleness checks.
pub fn csv_to_table(
    csv: &Path,
    schema: &Schema,
    out: &Path,
    source: String,
    schema_hash: String,
) -> Result<Header, DataError> {
    let file = CsvFile::open(csv, schema)?;
    let mut header = Header::new(schema, false, source);
    header.schema_hash = schema_hash;
    let mut writer = TableWriter::create(out, header, file.lines())?;
    file.parse(|rows| writer.append(&rows))?;
    writer.finish()
}

fn check_header(path: &Path, line: &[u8], layout: &Layout) -> Result<(), DataError> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_start_matches('\u{feff}').trim_end_matches('\r');
    let found: Vec<&str> = text.split(',').map(str::trim).collect();
    let mismatch = (0..found.len().max(layout.names.len()))
        .find(|&i| found.get(i).copied() != layout.names.get(i).map(String::as_str));
    match mismatch {
        None => Ok(()),
        Some(i) => Err(DataError::Header {
            path: path.to_path_buf(),
            position: i + 1,
            expected: layout
                .names
                .get(i)
                .cloned()
                .unwrap_or_else(|| "(end of line)".into()),
            found: found
                .get(i)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "(end of line)".into()),
            all: if layout.names.len() > 8 {
                format!(
                    "{}, ... {} columns in all",
                    layout.names[..4].join(", "),
                    layout.names.len()
                )
            } else {
                layout.names.join(", ")
            },
        }),
    }
}

/// Splits `text` into pieces of about `target` bytes that end at line ends.
fn split_lines(text: &[u8], target: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let cut = if rest.len() <= target {
            rest.len()
        } else {
            memchr::memchr(b'\n', &rest[target..]).map_or(rest.len(), |i| target + i + 1)
        };
        chunks.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    chunks
}

/// Parses whole lines into rows; returns the rows and the number of lines, or the
/// chunk-relative line and message of the first bad value.
///
/// Separators are found 64 bytes at a time, so that each value is parsed knowing where it
/// ends: fields then parse independently of one another, which is what makes the common
/// case fast. A line the fast path does not take as it stands (a blank line, spaces, an
/// out-of-range category, an error) is parsed again by the checked path, whose messages
/// name the column.
fn parse_chunk(chunk: &[u8], layout: &Layout) -> Result<(Rows, usize), (usize, String)> {
    let estimate = chunk.len() / (8 * layout.columns.len()).max(1);
    let mut rows = Rows {
        categorical: Vec::with_capacity(estimate * layout.fields),
        numerical: Vec::with_capacity(estimate * layout.numerical),
        labels: Vec::with_capacity(estimate * layout.labels),
        probabilities: Vec::new(),
    };
    let mut separators = Separators::new(chunk, 0);
    let mut labels = vec![0u8; layout.labels];
    let mut lines = 0;
    let mut start = 0;
    while start < chunk.len() {
        let kept = (rows.categorical.len(), rows.numerical.len());
        start = match fast_line(
            chunk,
            start,
            &mut separators,
            layout,
            &mut rows,
            &mut labels,
        ) {
            Some(next) => next,
            None => {
                rows.categorical.truncate(kept.0);
                rows.numerical.truncate(kept.1);
                let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
                let line = &chunk[start..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if !line.is_empty() {
                    parse_line(line, layout, &mut rows, &mut labels).map_err(|m| (lines, m))?;
                }
                separators = Separators::new(chunk, end + 1);
                end + 1
            }
        };
        lines += 1;
    }
    Ok((rows, lines))
}

/// The next field from `*start`, which must end at a comma (at a line end, or the chunk's
/// end, if `last`); moves `*start` past it.
#[inline]
fn next_field(
    chunk: &[u8],
    start: &mut usize,
    separators: &mut Separators,
    last: bool,
) -> Option<(usize, usize)> {
    let separator = separators.next();
    let ends_line = separator.is_none_or(|p| chunk[p] == b'\n');
    if ends_line != last {
        return None;
    }
    let next = separator.map_or(chunk.len(), |p| p + 1);
    let mut end = separator.unwrap_or(chunk.len());
    if last && end > *start && chunk[end - 1] == b'\r' {
        end -= 1;
    }
    let field = (*start, end);
    *start = next;
    Some(field)
}

/// One line of plain values from `start`, pushed into `rows`; returns where the next line
/// starts, or `None` (with `rows` partly extended) when the line needs the checked path.
#[inline]
fn fast_line(
    chunk: &[u8],
    mut start: usize,
    separators: &mut Separators,
    layout: &Layout,
    rows: &mut Rows,
    labels: &mut [u8],
) -> Option<usize> {
    // Columns come as the id, the categorical fields, the numerical ones, then the labels.
    if layout.has_id {
        next_field(chunk, &mut start, separators, false)?;
    }
    for &cardinality in &layout.cardinalities {
        let (s, e) = next_field(chunk, &mut start, separators, false)?;
        let category = decimal::index(chunk, s, e)?;
        if category >= cardinality {
            return None;
        }
        rows.categorical.push(category);
    }
    for _ in 0..layout.numerical {
        let (s, e) = next_field(chunk, &mut start, separators, false)?;
        rows.numerical.push(decimal::float(chunk, s, e)?);
    }
    for (task, label) in labels.iter_mut().enumerate() {
        let (s, e) = next_field(chunk, &mut start, separators, task + 1 == layout.labels)?;
        if e != s + 1 {
            return None;
        }
        *label = chunk[s].wrapping_sub(b'0');
        if *label > 1 {
            return None;
        }
    }
    if layout.cascade && (1..layout.labels).any(|t| labels[t] == 1 && labels[t - 1] == 0) {
        return None;
    }
    rows.labels.extend_from_slice(labels);
    Some(start)
}

/// A non-negative decimal integer, or `None`.
fn parse_index(text: &[u8]) -> Option<u32> {
    if text.is_empty() || text.len() > 9 {
        return None;
    }
    text.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// The checked path: every field trimmed and checked, errors naming the column.
fn parse_line(
    line: &[u8],
    layout: &Layout,
    rows: &mut Rows,
    labels: &mut [u8],
) -> Result<(), String> {
    let expected = layout.columns.len();
    let wrong_count = || {
        format!(
            "expected {expected} columns, found {}",
            line.iter().filter(|&&b| b == b',').count() + 1
        )
    };
    let mut rest = Some(line);
    for (index, column) in layout.columns.iter().enumerate() {
        // Fields are short: a plain scan beats a memchr call per field.
        let text = rest.ok_or_else(wrong_count)?;
        let raw = match text.iter().position(|&b| b == b',') {
            Some(comma) => {
                rest = Some(&text[comma + 1..]);
                &text[..comma]
            }
            None => {
                rest = None;
                text
            }
        };
        let value = raw.trim_ascii();
        let name = || &layout.names[index];
        let shown = || String::from_utf8_lossy(raw).into_owned();
        match *column {
            Column::Id => {}
            Column::Categorical(field) => {
                let category = parse_index(value).ok_or_else(|| {
                    format!(
                        "column `{}`: `{}` is not a category index (a non-negative integer)",
                        name(),
                        shown()
                    )
                })?;
                let cardinality = layout.cardinalities[field];
                let category = if category < cardinality {
                    category
                } else if layout.clamp {
                    cardinality - 1
                } else {
                    return Err(format!(
                        "column `{}`: category {category} is at or above the field's cardinality {cardinality}; raise the cardinality in the data set's schema, or set schema.oov = \"clamp\"",
                        name()
                    ));
                };
                rows.categorical.push(category);
            }
            Column::Numerical => {
                let number: f32 = fast_float2::parse(value)
                    .map_err(|_| format!("column `{}`: `{}` is not a number", name(), shown()))?;
                if !number.is_finite() {
                    return Err(format!(
                        "column `{}`: {} is NaN or infinite; clean or impute the value",
                        name(),
                        shown()
                    ));
                }
                rows.numerical.push(number);
            }
            Column::Label(task) => {
                labels[task] = match value {
                    b"0" | b"0.0" => 0,
                    b"1" | b"1.0" => 1,
                    _ => {
                        return Err(format!(
                            "column `{}`: label must be 0 or 1, found `{}`",
                            name(),
                            shown()
                        ));
                    }
                };
            }
        }
    }
    if rest.is_some() {
        return Err(wrong_count());
    }
    if layout.cascade
        && let Some(t) = (1..layout.labels).find(|&t| labels[t] == 1 && labels[t - 1] == 0)
    {
        return Err(format!(
            "`{}` is 1 but `{}` is 0: with a cascade schema each label needs the previous one (a conversion needs a click)",
            layout.names[expected - layout.labels + t],
            layout.names[expected - layout.labels + t - 1]
        ));
    }
    rows.labels.extend_from_slice(labels);
    Ok(())
}

/// Writes `table` as a CSV of `schema` (ids are the row numbers), atomically.
pub fn write_csv(table: &Table, schema: &Schema, path: &Path) -> Result<(), DataError> {
    let h = &table.header;
    let categories = table.categorical();
    let numbers = table.numerical();
    let labels = table.labels();
    let tmp = path.with_extension(format!("csv.{}.tmp", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(DataError::io(&tmp))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut line = schema.header().join(",");
    line.push('\n');
    let result = (|| -> std::io::Result<()> {
        out.write_all(line.as_bytes())?;
        for row in 0..h.rows {
            line.clear();
            if schema.id.is_some() {
                write!(line, "{row},").expect("writing to a String");
            }
            for f in 0..h.fields {
                write!(line, "{},", categories.get(row * h.fields + f))
                    .expect("writing to a String");
            }
            for x in &numbers[row * h.numerical..(row + 1) * h.numerical] {
                write!(line, "{x},").expect("writing to a String");
            }
            for (t, l) in labels[row * h.labels..(row + 1) * h.labels]
                .iter()
                .enumerate()
            {
                line.push_str(if *l == 1 { "1" } else { "0" });
                line.push(if t + 1 == h.labels { '\n' } else { ',' });
            }
            out.write_all(line.as_bytes())?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(DataError::io(&tmp)(e));
    }
    std::fs::rename(&tmp, path).map_err(DataError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_line_ends_and_cover_the_text() {
        let text = b"a,1\nbb,2\nccc,3\nd,4";
        for target in 1..text.len() + 2 {
            let chunks = split_lines(text, target);
            assert_eq!(chunks.concat(), text.to_vec());
            for c in &chunks[..chunks.len() - 1] {
                assert_eq!(c.last(), Some(&b'\n'));
            }
        }
    }
}
