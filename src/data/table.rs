//! The binary table: a memory-mapped file of one data set split. Blocks by type
//! (categorical u8/u16/u32, numerical f32, labels u8, optional true probabilities f32),
//! each row-major so that gathering a batch copies contiguous bytes. Little-endian.
//!
//! Layout: `DAATABLE` | u64 header length | JSON [`Header`] | blocks, each 64-byte aligned.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use super::DataError;

const MAGIC: &[u8; 8] = b"DAATABLE";
pub const FORMAT_VERSION: u32 = 1;
const ALIGN: u64 = 64;

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
    pub fn clear(&mut self) {
        self.categorical.clear();
        self.numerical.clear();
        self.labels.clear();
        self.probabilities.clear();
    }
}

/// The narrowest width that holds every category below `max_cardinality`.
pub fn category_width(max_cardinality: u32) -> usize {
    match max_cardinality {
        0..=0x100 => 1,
        0x101..=0x1_0000 => 2,
        _ => 4,
    }
}

/// Writes a table in chunks (memory stays bounded by one chunk), then moves it into place
/// atomically: a crash leaves no partial table.
pub struct TableWriter {
    path: PathBuf,
    header: Header,
    blocks: Vec<(PathBuf, BufWriter<File>)>,
    temporaries: Vec<PathBuf>,
}

impl TableWriter {
    pub fn create(path: &Path, mut header: Header) -> Result<Self, DataError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(DataError::io(dir))?;
        }
        header.rows = 0;
        header.version = FORMAT_VERSION;
        let block = |name: &str| -> Result<(PathBuf, BufWriter<File>), DataError> {
            let p = temp_path(path, name);
            let f = File::create(&p).map_err(DataError::io(&p))?;
            Ok((p, BufWriter::with_capacity(1 << 20, f)))
        };
        let blocks = vec![block("cat")?, block("num")?, block("lab")?, block("prob")?];
        let mut temporaries: Vec<PathBuf> = blocks.iter().map(|(p, _)| p.clone()).collect();
        temporaries.push(temp_path(path, "table"));
        Ok(TableWriter {
            path: path.to_path_buf(),
            header,
            blocks,
            temporaries,
        })
    }

    pub fn append(&mut self, rows: &Rows) -> Result<(), DataError> {
        let h = &self.header;
        let n = rows.labels.len() / h.labels.max(1);
        debug_assert_eq!(rows.categorical.len(), n * h.fields);
        debug_assert_eq!(rows.numerical.len(), n * h.numerical);
        let io = |p: &Path| DataError::io(p);
        let [cat, num, lab, prob] = &mut self.blocks[..] else {
            unreachable!("a writer has four blocks")
        };
        match h.category_width {
            1 => {
                let narrow: Vec<u8> = rows.categorical.iter().map(|&c| c as u8).collect();
                cat.1.write_all(&narrow)
            }
            2 => {
                let narrow: Vec<u16> = rows.categorical.iter().map(|&c| c as u16).collect();
                cat.1.write_all(bytemuck::cast_slice(&narrow))
            }
            _ => cat.1.write_all(bytemuck::cast_slice(&rows.categorical)),
        }
        .map_err(io(&cat.0))?;
        num.1
            .write_all(bytemuck::cast_slice(&rows.numerical))
            .map_err(io(&num.0))?;
        lab.1.write_all(&rows.labels).map_err(io(&lab.0))?;
        if h.has_probabilities {
            debug_assert_eq!(rows.probabilities.len(), n * h.labels);
            prob.1
                .write_all(bytemuck::cast_slice(&rows.probabilities))
                .map_err(io(&prob.0))?;
        }
        self.header.rows += n;
        Ok(())
    }

    /// Assembles header and blocks into a temporary file, then renames it into place.
    pub fn finish(mut self) -> Result<Header, DataError> {
        let blocks = std::mem::take(&mut self.blocks);
        let header = self.header.clone();
        let path = self.path.clone();
        let final_tmp = temp_path(&path, "table");
        let result = (|| -> Result<(), DataError> {
            let io = |p: &Path| DataError::io(p);
            let mut out = BufWriter::with_capacity(
                1 << 20,
                File::create(&final_tmp).map_err(io(&final_tmp))?,
            );
            let json = serde_json::to_vec(&header).expect("headers serialize");
            let mut written = 0u64;
            let pad = |out: &mut BufWriter<File>, written: &mut u64| -> std::io::Result<()> {
                let pad = (ALIGN - *written % ALIGN) % ALIGN;
                out.write_all(&[0u8; ALIGN as usize][..pad as usize])?;
                *written += pad;
                Ok(())
            };
            let mut preamble = MAGIC.to_vec();
            preamble.extend((json.len() as u64).to_le_bytes());
            preamble.extend(&json);
            out.write_all(&preamble).map_err(io(&final_tmp))?;
            written += preamble.len() as u64;
            pad(&mut out, &mut written).map_err(io(&final_tmp))?;
            for (block_path, writer) in blocks {
                writer
                    .into_inner()
                    .map_err(|e| io(&block_path)(e.into_error()))?;
                let mut block = File::open(&block_path).map_err(io(&block_path))?;
                written += std::io::copy(&mut block, &mut out).map_err(io(&final_tmp))?;
                pad(&mut out, &mut written).map_err(io(&final_tmp))?;
                std::fs::remove_file(&block_path).map_err(io(&block_path))?;
            }
            out.into_inner()
                .map_err(|e| io(&final_tmp)(e.into_error()))?
                .sync_all()
                .map_err(io(&final_tmp))
        })();
        result?;
        std::fs::rename(&final_tmp, &path).map_err(DataError::io(&path))?;
        Ok(header)
    }
}

impl Drop for TableWriter {
    fn drop(&mut self) {
        for p in &self.temporaries {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn temp_path(path: &Path, part: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{part}.tmp", std::process::id()));
    path.with_file_name(name)
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
        let sizes = [
            header.rows * header.fields * header.category_width,
            header.rows * header.numerical * 4,
            header.rows * header.labels,
            if header.has_probabilities {
                header.rows * header.labels * 4
            } else {
                0
            },
        ];
        let align = |x: usize| x.div_ceil(ALIGN as usize) * ALIGN as usize;
        let mut offsets = [0usize; 4];
        let mut at = align(16 + json_len);
        for (offset, size) in offsets.iter_mut().zip(sizes) {
            *offset = at;
            at = align(at + size);
        }
        if map.len() < offsets[3] + sizes[3] {
            return Err(corrupt("truncated blocks"));
        }
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
