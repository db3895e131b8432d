//! CSV lines into rows for a schema's column layout: the fast paths (separators found or
//! listed, plain values read in bulk) and the checked path, which reads every other form
//! and names the column of a bad value.

#[cfg(target_arch = "x86_64")]
use super::avx512::{self, Avx512};
use super::decimal::{self, Separators};
use crate::data::schema::{Oov, Schema};
use crate::data::table::Rows;

#[derive(Debug, Clone, Copy)]
enum Column {
    Id,
    Categorical(usize),
    Numerical,
    Label(usize),
}

/// A schema's columns as the parsers walk them.
pub(super) struct Layout {
    pub(super) names: Vec<String>,
    columns: Vec<Column>,
    cardinalities: Vec<u32>,
    has_id: bool,
    pub(super) fields: usize,
    pub(super) numerical: usize,
    pub(super) labels: usize,
    cascade: bool,
    clamp: bool,
}

impl Layout {
    pub(super) fn new(schema: &Schema) -> Self {
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

/// The fast path this CPU parses CSV text with, for reports.
pub fn fast_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if Avx512::detect().is_some() {
        return "AVX-512: separators listed, numbers eight at a time";
    }
    "separators scanned, numbers one at a time"
}

/// Parses whole lines into rows; returns the rows and the number of lines, or the
/// chunk-relative line and message of the first bad value.
///
/// Separators are found 64 bytes at a time, so that each value is parsed knowing where it
/// ends: fields then parse independently of one another, which is what makes the common
/// case fast. Where the CPU has AVX-512, the separators of a window of lines are listed
/// first and the numbers read eight at a time. A line the fast path does not take as it
/// stands (a blank line, spaces, an out-of-range category, an error) is parsed again by the
/// checked path, whose messages name the column.
pub(super) fn parse_chunk(chunk: &[u8], layout: &Layout) -> Result<(Rows, usize), (usize, String)> {
    let mut lines = Lines::new(layout, chunk);
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = Avx512::detect() {
        lines.windows(cpu, chunk, WINDOW_BYTES)?;
        return Ok((lines.rows, lines.count));
    }
    lines.scanned(chunk)?;
    Ok((lines.rows, lines.count))
}

/// Bytes of text whose separators the AVX-512 path lists at once (then up to a line end).
#[cfg(target_arch = "x86_64")]
const WINDOW_BYTES: usize = 64 << 10;

/// Lines being parsed into rows.
struct Lines<'a> {
    layout: &'a Layout,
    rows: Rows,
    /// One row's labels.
    labels: Vec<u8>,
    /// Lines parsed so far.
    count: usize,
}

impl<'a> Lines<'a> {
    /// Room for the rows of `text`, estimated from its first line: growing a vector copies
    /// it.
    fn new(layout: &'a Layout, text: &[u8]) -> Self {
        let first_line = memchr::memchr(b'\n', text).map_or(text.len(), |i| i + 1);
        let estimate = text.len() / first_line.max(2 * layout.columns.len()) * 5 / 4 + 1;
        Lines {
            layout,
            rows: Rows {
                categorical: Vec::with_capacity(estimate * layout.fields),
                numerical: Vec::with_capacity(estimate * layout.numerical),
                labels: Vec::with_capacity(estimate * layout.labels),
                probabilities: Vec::new(),
            },
            labels: vec![0u8; layout.labels],
            count: 0,
        }
    }

    /// Parses the lines of `text` a window of about `window_bytes` (up to a line end) at a
    /// time, each from a list of its separators.
    #[cfg(target_arch = "x86_64")]
    fn windows(
        &mut self,
        cpu: Avx512,
        text: &[u8],
        window_bytes: usize,
    ) -> Result<(), (usize, String)> {
        let mut separators = Vec::new();
        let mut line_ends = Vec::new();
        let mut from = 0;
        while from < text.len() {
            let to = match text.get(from + window_bytes..) {
                Some(rest) => {
                    memchr::memchr(b'\n', rest).map_or(text.len(), |i| from + window_bytes + i + 1)
                }
                None => text.len(),
            };
            let window = &text[from..to];
            if window.len() <= avx512::MAX_TEXT {
                self.indexed(cpu, window, &mut separators, &mut line_ends)?;
            } else {
                self.scanned(window)?;
            }
            from = to;
        }
        Ok(())
    }

    /// Parses the lines of `text`, finding separators as it goes.
    fn scanned(&mut self, text: &[u8]) -> Result<(), (usize, String)> {
        let mut fields = Scan {
            start: 0,
            separators: Separators::new(text, 0),
        };
        while fields.start < text.len() {
            let (start, kept) = (fields.start, self.kept());
            let fast = fast_line(
                text,
                &mut fields,
                self.layout,
                &mut self.rows,
                &mut self.labels,
            );
            if fast.is_none() {
                let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
                self.checked(&text[start..end], kept)?;
                fields = Scan {
                    start: end + 1,
                    separators: Separators::new(text, end + 1),
                };
            }
            self.count += 1;
        }
        Ok(())
    }

    /// Parses the lines of `text` (at most [`avx512::MAX_TEXT`] bytes) from a list of its
    /// separators.
    #[cfg(target_arch = "x86_64")]
    fn indexed(
        &mut self,
        cpu: Avx512,
        text: &[u8],
        separators: &mut Vec<u32>,
        line_ends: &mut Vec<u32>,
    ) -> Result<(), (usize, String)> {
        avx512::with_avx512! {
            fn run(
                lines: &mut Lines,
                cpu: Avx512,
                text: &[u8],
                separators: &mut Vec<u32>,
                line_ends: &mut Vec<u32>,
            ) -> Result<(), (usize, String)> {
                cpu.separators(text, separators, line_ends);
                if text.last() != Some(&b'\n') {
                    separators.push(text.len() as u32);
                    line_ends.push(text.len() as u32);
                }
                let columns = lines.layout.columns.len();
                let mut first = 0;
                let mut start = 0;
                for &end in line_ends.iter() {
                    let kept = lines.kept();
                    // The line's fields end at the next `columns` separators if the last of
                    // them is its end.
                    let fields = separators
                        .get(first..first + columns)
                        .filter(|fields| fields[columns - 1] == end);
                    let fast = fields.and_then(|ends| {
                        let mut fields = Indexed { cpu, start, ends };
                        fast_line(text, &mut fields, lines.layout, &mut lines.rows, &mut lines.labels)
                    });
                    if fast.is_some() {
                        first += columns;
                    } else {
                        lines.checked(&text[start..end as usize], kept)?;
                        first += separators[first..].partition_point(|&p| p <= end);
                    }
                    start = end as usize + 1;
                    lines.count += 1;
                }
                Ok(())
            }
        }
        // SAFETY: `cpu` proves the CPU has the features `run` is compiled for.
        unsafe { run(self, cpu, text, separators, line_ends) }
    }

    /// How many values the rows hold.
    fn kept(&self) -> (usize, usize) {
        (self.rows.categorical.len(), self.rows.numerical.len())
    }

    /// Parses `line` (without its line end) by the checked path, after dropping whatever
    /// the fast path added beyond `kept`.
    fn checked(&mut self, line: &[u8], kept: (usize, usize)) -> Result<(), (usize, String)> {
        self.rows.categorical.truncate(kept.0);
        self.rows.numerical.truncate(kept.1);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(());
        }
        parse_line(line, self.layout, &mut self.rows, &mut self.labels).map_err(|m| (self.count, m))
    }
}

/// Where the fast path finds a line's fields, one after another.
trait Fields {
    /// The next field's start and end; it must end its line exactly when `last`.
    fn field(&mut self, text: &[u8], last: bool) -> Option<(usize, usize)>;

    /// The next `count` fields, read as plain decimals into `out`.
    fn numbers(&mut self, text: &[u8], count: usize, out: &mut Vec<f32>) -> Option<()>;
}

/// Fields found by scanning for separators from `start`.
struct Scan<'a> {
    start: usize,
    separators: Separators<'a>,
}

impl Fields for Scan<'_> {
    #[inline]
    fn field(&mut self, text: &[u8], last: bool) -> Option<(usize, usize)> {
        let separator = self.separators.next();
        let ends_line = separator.is_none_or(|p| text[p] == b'\n');
        if ends_line != last {
            return None;
        }
        let next = separator.map_or(text.len(), |p| p + 1);
        let end = separator.unwrap_or(text.len());
        let field = (self.start, without_return(text, self.start, end, last));
        self.start = next;
        Some(field)
    }

    #[inline]
    fn numbers(&mut self, text: &[u8], count: usize, out: &mut Vec<f32>) -> Option<()> {
        for _ in 0..count {
            let (s, e) = self.field(text, false)?;
            out.push(number(text, s, e)?);
        }
        Some(())
    }
}

/// Fields of a line whose separators are listed: `ends` holds one per field, the last one
/// the line's end.
#[cfg(target_arch = "x86_64")]
struct Indexed<'a> {
    cpu: Avx512,
    start: usize,
    ends: &'a [u32],
}

#[cfg(target_arch = "x86_64")]
impl Fields for Indexed<'_> {
    #[inline]
    fn field(&mut self, text: &[u8], last: bool) -> Option<(usize, usize)> {
        let (&end, rest) = self.ends.split_first()?;
        let field = (
            self.start,
            without_return(text, self.start, end as usize, last),
        );
        self.start = end as usize + 1;
        self.ends = rest;
        Some(field)
    }

    #[inline(always)]
    fn numbers(&mut self, text: &[u8], count: usize, out: &mut Vec<f32>) -> Option<()> {
        let (numbers, rest) = self.ends.split_at_checked(count)?;
        if let Some(&last) = numbers.last() {
            self.cpu
                .floats(text, self.start, numbers, out, |start, end| {
                    number(text, start, end)
                })?;
            self.start = last as usize + 1;
        }
        self.ends = rest;
        Some(())
    }
}

/// `text[start..end]` as the checked path reads a number without spaces around it: the
/// plain forms by the fast routine, any other (more digits, exponents, a `+`) by the general
/// parser; `None` for what the checked path must report (not a number, NaN, infinite) or
/// trim.
#[inline]
fn number(text: &[u8], start: usize, end: usize) -> Option<f32> {
    decimal::float(text, start, end).or_else(|| {
        let number: f32 = fast_float2::parse(text.get(start..end)?).ok()?;
        number.is_finite().then_some(number)
    })
}

/// `end`, less a carriage return before it if the field ends its line.
#[inline]
fn without_return(text: &[u8], start: usize, end: usize, last: bool) -> usize {
    if last && end > start && text[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// One line of plain values, its fields found by `fields`, pushed into `rows`; `None` (with
/// `rows` partly extended) when the line needs the checked path. Always inlined: in the
/// AVX-512 path the kernels inline only into code compiled for AVX-512.
#[inline(always)]
fn fast_line(
    text: &[u8],
    fields: &mut impl Fields,
    layout: &Layout,
    rows: &mut Rows,
    labels: &mut [u8],
) -> Option<()> {
    // Columns come as the id, the categorical fields, the numerical ones, then the labels.
    if layout.has_id {
        fields.field(text, false)?;
    }
    for &cardinality in &layout.cardinalities {
        let (s, e) = fields.field(text, false)?;
        let category = decimal::index(text, s, e)?;
        if category >= cardinality {
            return None;
        }
        rows.categorical.push(category);
    }
    fields.numbers(text, layout.numerical, &mut rows.numerical)?;
    for (task, label) in labels.iter_mut().enumerate() {
        let (s, e) = fields.field(text, task + 1 == layout.labels)?;
        if e != s + 1 {
            return None;
        }
        *label = text[s].wrapping_sub(b'0');
        if *label > 1 {
            return None;
        }
    }
    if layout.cascade && (1..layout.labels).any(|t| labels[t] == 1 && labels[t - 1] == 0) {
        return None;
    }
    rows.labels.extend_from_slice(labels);
    Some(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::{Categorical, Columns, Numerical};
    use rand::{Rng, SeedableRng};

    fn columns(prefix: &str) -> Columns {
        Columns {
            names: None,
            prefix: Some(prefix.into()),
        }
    }

    /// An id, three categorical fields, eleven numbers (a group of eight and three), two
    /// cascading labels.
    fn layout() -> Layout {
        Layout::new(&Schema {
            id: Some("id".into()),
            categorical: Categorical {
                columns: columns("c"),
                cardinalities: vec![10, 300, 70_000],
            },
            numerical: Numerical {
                columns: columns("n"),
                count: Some(11),
            },
            labels: vec!["click".into(), "conversion".into()],
            cascade: true,
            oov: Oov::Error,
        })
    }

    /// A line of the layout: plain values, or (when `irregular`) one of the forms the
    /// checked path takes: spaces, signs, exponents, `1.0` labels, CRLF, a blank line.
    fn line(rng: &mut impl Rng, irregular: bool) -> String {
        let mut fields = vec![rng.random_range(0..1000u32).to_string()];
        for cardinality in [10, 300, 70_000] {
            fields.push(rng.random_range(0..cardinality).to_string());
        }
        for _ in 0..11 {
            fields.push(match rng.random_range(0..4) {
                0 => "0".into(),
                1 => rng.random::<f32>().to_string(),
                2 => format!("-{}", rng.random_range(0..100_000) as f32 / 64.0),
                _ => (rng.random::<f64>() * 1e6).to_string(),
            });
        }
        let click = rng.random_range(0..2);
        fields.push(click.to_string());
        fields.push((click * rng.random_range(0..2)).to_string());
        let mut end = "\n";
        if irregular {
            let column = rng.random_range(0..fields.len());
            match rng.random_range(0..6) {
                0 => fields[column] = format!(" {} ", fields[column]),
                1 if (4..15).contains(&column) => {
                    fields[column] = format!("{:e}", fields[column].parse::<f64>().unwrap())
                }
                2 if (4..15).contains(&column) && !fields[column].starts_with('-') => {
                    fields[column].insert(0, '+')
                }
                3 => fields[16] = format!("{}.0", fields[16]),
                4 => end = "\r\n",
                _ => end = "\n\n",
            }
        }
        fields.join(",") + end
    }

    /// What the checked path reads of `text`, line by line: the rows and line count, or the
    /// error at its line. Both fast paths (the AVX-512 one with separator windows of
    /// several sizes) must give the same.
    fn checked(text: &str) -> Result<(Rows, usize), (usize, String)> {
        let layout = layout();
        let mut checked = Lines::new(&layout, text.as_bytes());
        text.split_inclusive('\n')
            .try_for_each(|line| {
                let line = line.strip_suffix('\n').unwrap_or(line);
                checked.checked(line.as_bytes(), checked.kept())?;
                checked.count += 1;
                Ok(())
            })
            .map(|()| (checked.rows, checked.count))
    }

    /// Texts of 2,000 rows with bad lines at the start, middle and end, and cut short.
    fn texts() -> Vec<String> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&line(&mut rng, i % 5 == 0));
        }
        let mut texts = vec![
            text.clone(),
            text.trim_end().to_string(),
            text[..text.len() - 2].to_string(),
        ];
        let first = text.lines().find(|l| !l.is_empty()).unwrap();
        for bad in [
            "1,2,3,4,5",
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,1,0,9",
            &first.replace(",0,", ",x,"),
            &first.replacen(',', ",10,", 1),
            &(first.to_string() + "1"),
            "",
        ] {
            for at in [0, 700, 1999] {
                let mut lines: Vec<&str> = text.lines().collect();
                lines.insert(at, bad);
                texts.push(lines.join("\n") + "\n");
            }
        }
        texts
    }

    #[test]
    fn both_fast_paths_read_the_same_rows_and_errors() {
        let layout = layout();
        for text in texts() {
            let mut scanned = Lines::new(&layout, text.as_bytes());
            let found = scanned
                .scanned(text.as_bytes())
                .map(|()| (scanned.rows, scanned.count));
            // Not assert_eq: the rows would fill the screen.
            assert!(found == checked(&text), "scanning: the paths differ");
        }
        let text = &texts()[0];
        let rows = text.lines().filter(|l| !l.is_empty()).count();
        assert_eq!(
            parse_chunk(text.as_bytes(), &layout)
                .unwrap()
                .0
                .labels
                .len(),
            2 * rows
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    #[cfg_attr(
        not(host_avx512),
        ignore = "this CPU lacks AVX-512: the kernels cannot run"
    )]
    fn the_avx512_path_reads_the_rows_and_errors_of_the_checked_path_in_any_window() {
        let cpu = Avx512::detect().expect("build.rs found AVX-512 on this machine");
        let layout = layout();
        for text in texts() {
            let expected = checked(&text);
            for window in [1, 100, 1000, WINDOW_BYTES] {
                let mut indexed = Lines::new(&layout, text.as_bytes());
                let found = indexed
                    .windows(cpu, text.as_bytes(), window)
                    .map(|()| (indexed.rows, indexed.count));
                assert!(
                    found == expected,
                    "windows of {window} bytes: the paths differ"
                );
            }
        }
    }
}
