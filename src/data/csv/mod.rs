//! The CSV engine: reads any declared schema's CSV into a binary [`Table`] and writes one
//! back.
//!
//! What it promises: the header must match the schema's columns; every value is checked,
//! and a bad one is an error naming file, line and column, never a silent wrong value;
//! numbers are the correctly rounded f32 of their decimal text whichever path reads them
//! (the AVX-512 kernels of [`avx512`] where the CPU has them, the SSE2/scalar readers of
//! [`decimal`] elsewhere, the checked line parser of [`lines`] for anything unusual, all
//! tested against each other bit for bit); rows are parsed in parallel chunks straight into
//! a [`TableWriter`], so memory stays bounded whatever the file's size, and the table
//! appears only once complete.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod decimal;
mod lines;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use lines::fast_path;
use lines::{Layout, parse_chunk};

use super::schema::Schema;
use super::table::{Header, Rows, TableWriter, ordered};
use super::{DataError, Table};

/// Bytes of CSV text parsed per task.
const CHUNK_BYTES: usize = 4 << 20;

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
                    let layout = &self.layout;
                    rows += parsed.count(layout.fields, layout.numerical, layout.labels);
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

/// The first column of every row of `csv` (its id column), in row order: the header and
/// blank lines skipped, as the parser skips them.
pub fn first_column(csv: &Path) -> Result<Vec<String>, DataError> {
    let text = std::fs::read(csv).map_err(DataError::io(csv))?;
    Ok(text
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|line| !line.trim_ascii().is_empty())
        .map(|line| {
            let end = memchr::memchr(b',', line).unwrap_or(line.len());
            String::from_utf8_lossy(line[..end].trim_ascii()).into_owned()
        })
        .collect())
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

/// Writes `table` as a CSV of `schema` (ids are the row numbers), atomically.
pub fn write_csv(table: &Table, schema: &Schema, path: &Path) -> Result<(), DataError> {
    let h = &table.header;
    let categories = table.categorical();
    let numbers = table.numerical();
    let labels = table.labels();
    let mut line = schema.header().join(",");
    line.push('\n');
    crate::whole_file::write_with(path, |out| -> Result<(), DataError> {
        out.write_all(line.as_bytes())
            .map_err(DataError::io(path))?;
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
            out.write_all(line.as_bytes())
                .map_err(DataError::io(path))?;
        }
        Ok(())
    })
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
