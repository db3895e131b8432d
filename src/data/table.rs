//! The binary table: a memory-mapped file of one data set split. Blocks by type
//! (categorical u8/u16/u32, numerical f32, labels u8, optional true probabilities f32),
//! each row-major so that gathering a batch copies contiguous bytes. Little-endian.
//!
//! Layout: `DAATABLE` | u64 header length | JSON [`Header`] | blocks, each 64-byte aligned.
//! The header holds the CRC-32C of the blocks' bytes, verified whenever a table is opened:
//! a table damaged on disk is refused (a cache is then rebuilt), never read.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::DataError;

const MAGIC: &[u8; 8] = b"DAATABLE";
pub const FORMAT_VERSION: u32 = 3;
const ALIGN: u64 = 64;
/// Bytes reserved at the start of the file for the magic, the header length and the header.
const PREAMBLE: u64 = 4096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    pub version: u32,
    pub rows: usize,
    pub fields: usize,
    pub numerical: usize,
    pub labels: usize,
    /// Bytes per categorical value: 1, 2 or 4.
    pub category_width: usize,
    pub has_probabilities: bool,
    /// Hash of the schema the table was built with.
    pub schema_hash: String,
    /// Fingerprint of what the table was built from (a CSV file, a generator recipe).
    pub source: String,
    /// Byte offsets of the categorical, numerical, label and probability blocks.
    #[serde(default)]
    pub offsets: [u64; 4],
    /// CRC-32C of the blocks' bytes, in block order.
    #[serde(default)]
    pub checksum: u32,
}

impl Header {
    /// The header of a table with these columns, before any rows are written.
    pub fn new(schema: &super::Schema, has_probabilities: bool, source: String) -> Self {
        let cardinalities = &schema.categorical.cardinalities;
        Header {
            version: FORMAT_VERSION,
            rows: 0,
            fields: cardinalities.len(),
            numerical: schema.numerical_names().len(),
            labels: schema.labels.len(),
            category_width: category_width(cardinalities.iter().copied().max().unwrap_or(1)),
            has_probabilities,
            schema_hash: schema.hash(),
            source,
            offsets: [0; 4],
            checksum: 0,
        }
    }

    /// The CRC-32C of the blocks in `bytes` (the whole file), in block order.
    fn checksum_of(&self, bytes: &[u8]) -> Option<u32> {
        let sizes = self.row_bytes().map(|b| b * self.rows as u64);
        self.offsets
            .iter()
            .zip(sizes)
            .try_fold(0, |crc, (&offset, size)| {
                let block = bytes.get(offset as usize..(offset + size) as usize)?;
                Some(crc32c::crc32c_append(crc, block))
            })
    }

    /// Bytes per row of each block.
    fn row_bytes(&self) -> [u64; 4] {
        [
            (self.fields * self.category_width) as u64,
            (self.numerical * 4) as u64,
            self.labels as u64,
            if self.has_probabilities {
                (self.labels * 4) as u64
            } else {
                0
            },
        ]
    }
}

/// Rows of a table being built, row-major per block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub categorical: Vec<u32>,
    pub numerical: Vec<f32>,
    pub labels: Vec<u8>,
    pub probabilities: Vec<f32>,
}

impl Rows {
    /// How many rows these are, for rows of `fields` categories, `numerical` numbers and
    /// `labels` labels (files to predict on have no labels).
    pub fn count(&self, fields: usize, numerical: usize, labels: usize) -> usize {
        [
            (self.labels.len(), labels),
            (self.categorical.len(), fields),
            (self.numerical.len(), numerical),
        ]
        .into_iter()
        .find(|&(_, width)| width > 0)
        .map_or(0, |(values, width)| values / width)
    }
}

/// The narrowest width that holds every category below `max_cardinality`.
fn category_width(max_cardinality: u32) -> usize {
    match max_cardinality {
        0..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        _ => 4,
    }
}

/// Writes a table in chunks (memory stays bounded by one chunk) straight into each block's
/// place in a temporary file sized for `capacity` rows, then renames it into place: a
/// crash leaves no partial table.
pub struct TableWriter {
    path: PathBuf,
    temporary: PathBuf,
    file: File,
    header: Header,
    capacity: usize,
}

impl TableWriter {
    pub fn create(path: &Path, mut header: Header, capacity: usize) -> Result<Self, DataError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(DataError::io(dir))?;
        }
        header.rows = 0;
        header.version = FORMAT_VERSION;
        let align = |x: u64| x.div_ceil(ALIGN) * ALIGN;
        let mut at = PREAMBLE;
        let row_bytes = header.row_bytes();
        for (offset, row_bytes) in header.offsets.iter_mut().zip(row_bytes) {
            *offset = at;
            at = align(at + row_bytes * capacity as u64);
        }
        let temporary = crate::whole_file::temp_path(path);
        // Readable too: `finish` maps what was written to checksum it.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(DataError::io(&temporary))?;
        file.set_len(at).map_err(DataError::io(&temporary))?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            temporary,
            file,
            header,
            capacity,
        })
    }

    pub fn append(&mut self, rows: &Rows) -> Result<(), DataError> {
        let h = &self.header;
        let n = rows.count(h.fields, h.numerical, h.labels);
        assert!(
            self.header.rows + n <= self.capacity,
            "table writer capacity exceeded"
        );
        debug_assert_eq!(rows.categorical.len(), n * h.fields);
        debug_assert_eq!(rows.numerical.len(), n * h.numerical);
        let narrow: Vec<u8> = match h.category_width {
            1 => rows.categorical.iter().map(|&c| c as u8).collect(),
            2 => rows
                .categorical
                .iter()
                .flat_map(|&c| (c as u16).to_le_bytes())
                .collect(),
            _ => bytemuck::cast_slice(&rows.categorical).to_vec(),
        };
        let blocks: [&[u8]; 4] = [
            &narrow,
            bytemuck::cast_slice(&rows.numerical),
            &rows.labels,
            if h.has_probabilities {
                bytemuck::cast_slice(&rows.probabilities)
            } else {
                &[]
            },
        ];
        for ((block, offset), row_bytes) in blocks.iter().zip(h.offsets).zip(h.row_bytes()) {
            let at = offset + row_bytes * h.rows as u64;
            self.file
                .seek(SeekFrom::Start(at))
                .and_then(|_| self.file.write_all(block))
                .map_err(DataError::io(&self.temporary))?;
            start_writeback(&self.file, at, block.len());
        }
        self.header.rows += n;
        Ok(())
    }

    /// Writes the header with the blocks' checksum, syncs, and renames the table into place.
    pub fn finish(mut self) -> Result<Header, DataError> {
        // SAFETY: this process alone writes the temporary file, and no write happens while
        // the mapping lives.
        let written = unsafe { Mmap::map(&self.file) }.map_err(DataError::io(&self.temporary))?;
        self.header.checksum = self
            .header
            .checksum_of(&written)
            .expect("the file was sized for its blocks");
        drop(written);
        let json = serde_json::to_vec(&self.header).expect("headers serialize");
        let mut preamble = MAGIC.to_vec();
        preamble.extend((json.len() as u64).to_le_bytes());
        preamble.extend(&json);
        assert!(preamble.len() as u64 <= PREAMBLE, "table headers are small");
        let io = DataError::io(&self.temporary);
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&preamble))
            .and_then(|_| self.file.sync_all())
            .map_err(io)?;
        std::fs::rename(&self.temporary, &self.path).map_err(DataError::io(&self.path))?;
        Ok(self.header.clone())
    }
}

/// Starts writing `len` bytes at `offset` to disk without waiting, so that the final
/// fsync, which makes the table durable before it is renamed into place, finds little
/// left to do. Only a hint: where unsupported, the fsync does all the work.
fn start_writeback(file: &File, offset: u64, len: usize) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: sync_file_range only reads its integer arguments; a failure (an old
        // kernel, a file system without it) changes nothing, and the fsync still runs.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temporary);
    }
}

/// Runs `produce` over `items` in parallel groups and hands the results to `consume` in
/// order; consuming one group overlaps producing the next, and memory holds two groups.
pub fn ordered<I, P, E>(
    items: &[I],
    produce: impl Fn(&I) -> P + Sync,
    mut consume: impl FnMut(P) -> Result<(), E> + Send,
) -> Result<(), E>
where
    I: Sync,
    P: Send,
    E: Send,
{
    use rayon::prelude::*;
    let mut pending: Vec<P> = Vec::new();
    for group in items.chunks(2 * rayon::current_num_threads()) {
        let (consumed, produced) = rayon::join(
            || pending.drain(..).try_for_each(&mut consume),
            || group.par_iter().map(&produce).collect::<Vec<P>>(),
        );
        consumed?;
        pending = produced;
    }
    pending.into_iter().try_for_each(consume)
}

/// A memory-mapped table.
#[derive(Debug)]
pub struct Table {
    pub path: PathBuf,
    pub header: Header,
    map: Mmap,
    offsets: [usize; 4],
}

/// The categorical block at its stored width.
#[derive(Debug, Clone, Copy)]
pub enum Categories<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
}

impl Categories<'_> {
    pub fn get(&self, i: usize) -> u32 {
        match self {
            Categories::U8(v) => u32::from(v[i]),
            Categories::U16(v) => u32::from(v[i]),
            Categories::U32(v) => v[i],
        }
    }

    /// Appends values `start..start + len` to `out`.
    pub fn extend_into(&self, start: usize, len: usize, out: &mut Vec<u32>) {
        match self {
            Categories::U8(v) => out.extend(v[start..start + len].iter().map(|&c| u32::from(c))),
            Categories::U16(v) => out.extend(v[start..start + len].iter().map(|&c| u32::from(c))),
            Categories::U32(v) => out.extend_from_slice(&v[start..start + len]),
        }
    }
}

impl Table {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let corrupt = |message: &str| DataError::Corrupt {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        let file = File::open(path).map_err(DataError::io(path))?;
        // SAFETY: tables are written once to a temporary file and renamed into place; daa
        // never modifies a table in place, so the mapping's bytes do not change under us.
        let map = unsafe { Mmap::map(&file) }.map_err(DataError::io(path))?;
        if map.len() < 16 || &map[..8] != MAGIC {
            return Err(corrupt("bad magic"));
        }
        let json_len = u64::from_le_bytes(map[8..16].try_into().expect("8 bytes")) as usize;
        let json = map
            .get(16..16 + json_len)
            .ok_or_else(|| corrupt("truncated header"))?;
        let header: Header =
            serde_json::from_slice(json).map_err(|e| corrupt(&format!("header: {e}")))?;
        if header.version != FORMAT_VERSION {
            return Err(corrupt(&format!(
                "format version {} (this build reads {FORMAT_VERSION})",
                header.version
            )));
        }
        let sizes = header.row_bytes().map(|b| b * header.rows as u64);
        let within = header
            .offsets
            .iter()
            .zip(sizes)
            .all(|(&offset, size)| offset >= PREAMBLE && offset + size <= map.len() as u64);
        if !within {
            return Err(corrupt("truncated blocks"));
        }
        if header.checksum_of(&map) != Some(header.checksum) {
            return Err(corrupt("its checksum does not match its contents"));
        }
        let offsets = header.offsets.map(|o| o as usize);
        Ok(Table {
            path: path.to_path_buf(),
            header,
            map,
            offsets,
        })
    }

    pub fn rows(&self) -> usize {
        self.header.rows
    }

    fn block(&self, i: usize, len: usize) -> &[u8] {
        &self.map[self.offsets[i]..self.offsets[i] + len]
    }

    pub fn categorical(&self) -> Categories<'_> {
        let h = &self.header;
        let bytes = self.block(0, h.rows * h.fields * h.category_width);
        match h.category_width {
            1 => Categories::U8(bytes),
            2 => Categories::U16(bytemuck::cast_slice(bytes)),
            _ => Categories::U32(bytemuck::cast_slice(bytes)),
        }
    }

    pub fn numerical(&self) -> &[f32] {
        bytemuck::cast_slice(self.block(1, self.header.rows * self.header.numerical * 4))
    }

    pub fn labels(&self) -> &[u8] {
        self.block(2, self.header.rows * self.header.labels)
    }

    /// The true label probabilities, for synthetic data.
    pub fn probabilities(&self) -> Option<&[f32]> {
        let h = &self.header;
        h.has_probabilities
            .then(|| bytemuck::cast_slice(self.block(3, h.rows * h.labels * 4)))
    }

    /// Label `task` of every row, as 0/1.
    pub fn label_column(&self, task: usize) -> Vec<u8> {
        let t = self.header.labels;
        self.labels()
            .iter()
            .skip(task)
            .step_by(t)
            .copied()
            .collect()
    }
}
