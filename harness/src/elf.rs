//! Whether an executable needs a dynamic loader, read from its ELF program headers
//! (no `file` or `readelf` needed): a static executable has no `PT_INTERP` and
//! names no shared library (`DT_NEEDED`) in its dynamic section. A static-pie one
//! (what Rust's `crt-static` makes on x86_64-unknown-linux-gnu) keeps a dynamic
//! section for relocating itself, but names no library in it.

use std::path::Path;

use anyhow::{Context, Result, bail};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

/// How an executable is linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linking {
    Static,
    /// What makes it dynamic: its interpreter, or the shared libraries it names.
    Dynamic(String),
}

/// Reads `path`'s linking.
pub fn linking(path: &Path) -> Result<Linking> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{} is not a readable ELF file", path.display()))
}

/// The linking of the ELF image `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Linking> {
    let elf = Elf::new(bytes)?;
    let mut needed = 0;
    for header in elf.program_headers()? {
        let (kind, offset, size) = header?;
        let segment = bytes
            .get(offset..offset.checked_add(size).context("segment size")?)
            .context("a segment past the end of the file")?;
        match kind {
            PT_INTERP => {
                let interpreter = String::from_utf8_lossy(segment);
                let interpreter = interpreter.trim_end_matches('\0');
                return Ok(Linking::Dynamic(format!("interpreter {interpreter}")));
            }
            PT_DYNAMIC => needed += elf.count_needed(segment),
            _ => {}
        }
    }
    Ok(match needed {
        0 => Linking::Static,
        n => Linking::Dynamic(format!("{n} shared libraries (DT_NEEDED)")),
    })
}

/// The ELF header's layout: word size and byte order.
struct Elf<'a> {
    bytes: &'a [u8],
    wide: bool,
    little: bool,
}

impl<'a> Elf<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self> {
        if bytes.get(..4) != Some(b"\x7fELF") {
            bail!("no ELF magic");
        }
        let wide = match bytes.get(4) {
            Some(1) => false,
            Some(2) => true,
            other => bail!("ELF class {other:?}"),
        };
        let little = match bytes.get(5) {
            Some(1) => true,
            Some(2) => false,
            other => bail!("ELF data encoding {other:?}"),
        };
        Ok(Self {
            bytes,
            wide,
            little,
        })
    }

    /// An unsigned field of `size` bytes at `at` of `bytes`.
    fn uint(&self, bytes: &[u8], at: usize, size: usize) -> Result<u64> {
        let field = at
            .checked_add(size)
            .and_then(|end| bytes.get(at..end))
            .context("a field past the end of the file")?;
        let mut value = 0u64;
        for i in 0..size {
            let byte = if self.little {
                field[size - 1 - i]
            } else {
                field[i]
            };
            value = value << 8 | u64::from(byte);
        }
        Ok(value)
    }

    /// A word (address or offset) of the file's class.
    fn word(&self, bytes: &[u8], at: usize) -> Result<usize> {
        let size = if self.wide { 8 } else { 4 };
        usize::try_from(self.uint(bytes, at, size)?).context("a word beyond usize")
    }

    /// Each program header's type, file offset and file size.
    fn program_headers(&self) -> Result<impl Iterator<Item = Result<(u32, usize, usize)>> + '_> {
        // e_phoff, e_phentsize and e_phnum, where the class puts them.
        let (phoff, phentsize) = if self.wide { (32, 54) } else { (28, 42) };
        let table = self.word(self.bytes, phoff)?;
        let entry = usize::try_from(self.uint(self.bytes, phentsize, 2)?)?;
        let count = usize::try_from(self.uint(self.bytes, phentsize + 2, 2)?)?;
        // p_offset and p_filesz within an entry.
        let (offset, size) = if self.wide { (8, 32) } else { (4, 16) };
        Ok((0..count).map(move |i| {
            let at = i
                .checked_mul(entry)
                .and_then(|start| start.checked_add(table))
                .context("a program header beyond usize")?;
            let kind = u32::try_from(self.uint(self.bytes, at, 4)?)?;
            Ok((
                kind,
                self.word(self.bytes, at.saturating_add(offset))?,
                self.word(self.bytes, at.saturating_add(size))?,
            ))
        }))
    }

    /// The `DT_NEEDED` entries of a dynamic section, up to `DT_NULL`.
    fn count_needed(&self, dynamic: &[u8]) -> usize {
        let size = if self.wide { 8 } else { 4 };
        dynamic
            .chunks_exact(2 * size)
            .map(|entry| self.uint(entry, 0, size).unwrap_or(DT_NULL))
            .take_while(|&tag| tag != DT_NULL)
            .filter(|&tag| tag == DT_NEEDED)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debians_static_busybox_is_static() {
        assert_eq!(linking(Path::new("/bin/busybox")).unwrap(), Linking::Static);
    }

    #[test]
    fn a_program_linked_against_libc_is_dynamic_and_names_its_interpreter() {
        let Linking::Dynamic(why) = linking(Path::new("/bin/sh")).unwrap() else {
            panic!("/bin/sh read as static");
        };
        assert!(why.starts_with("interpreter /lib"), "{why}");
    }

    /// A 64-bit little-endian ELF image with one `PT_DYNAMIC` segment holding
    /// `tags` (each with a zero value), then `DT_NULL`.
    fn with_dynamic(tags: &[u64]) -> Vec<u8> {
        let mut image = vec![0u8; 64 + 56];
        image[..6].copy_from_slice(b"\x7fELF\x02\x01");
        image[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        image[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        image[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let dynamic: Vec<u8> = tags
            .iter()
            .chain(&[DT_NULL])
            .flat_map(|tag| [tag.to_le_bytes(), 0u64.to_le_bytes()].concat())
            .collect();
        image[64..68].copy_from_slice(&PT_DYNAMIC.to_le_bytes());
        image[72..80].copy_from_slice(&120u64.to_le_bytes()); // p_offset
        image[96..104].copy_from_slice(&(dynamic.len() as u64).to_le_bytes()); // p_filesz
        image.extend(dynamic);
        image
    }

    #[test]
    fn a_static_pie_relocates_itself_but_names_no_library() {
        // DT_RELA (7), DT_RELASZ (8): a static-pie's dynamic section.
        assert_eq!(parse(&with_dynamic(&[7, 8])).unwrap(), Linking::Static);
        assert_eq!(
            parse(&with_dynamic(&[7, DT_NEEDED, DT_NEEDED])).unwrap(),
            Linking::Dynamic("2 shared libraries (DT_NEEDED)".into())
        );
    }

    #[test]
    fn a_file_that_is_not_elf_is_an_error() {
        let error = parse(b"#!/bin/sh\n").unwrap_err().to_string();
        assert!(error.contains("no ELF magic"), "{error}");
        assert!(parse(b"\x7fELF\x02\x01").is_err());
    }
}
