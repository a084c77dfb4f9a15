//! Weights: uploaded as their GGUF bytes, split at row boundaries into buffers no larger than
//! the device's largest storage binding. Vectors (norm weights, biases) are widened to f32 at
//! upload: they are small, and every op that reads them wants f32.

use realm_core::{CoreError, GgmlType, Result, WeightDesc, WeightLayout};
use realm_shaders::WeightFormat;

use crate::gpu::Gpu;

/// One buffer of a weight: rows `row0 .. row0 + rows`.
pub struct Chunk {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) row0: usize,
    pub(crate) rows: usize,
}

/// A weight on the device.
pub struct WgpuWeight {
    pub(crate) name: String,
    pub(crate) format: WeightFormat,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) row_bytes: usize,
    pub(crate) chunks: Vec<Chunk>,
}

impl WgpuWeight {
    pub(crate) fn numel(&self) -> usize {
        self.rows * self.cols
    }
}

/// The shader include of a GGUF type, if there is one.
pub(crate) fn format_of(ty: GgmlType) -> Option<WeightFormat> {
    use GgmlType as T;
    use WeightFormat as F;
    Some(match ty {
        T::F32 => F::F32,
        T::F16 => F::F16,
        T::BF16 => F::BF16,
        T::Q4_0 => F::Q4_0,
        T::Q4_1 => F::Q4_1,
        T::Q5_0 => F::Q5_0,
        T::Q5_1 => F::Q5_1,
        T::Q8_0 => F::Q8_0,
        T::Q8_1 => F::Q8_1,
        T::Q2_K => F::Q2K,
        T::Q3_K => F::Q3K,
        T::Q4_K => F::Q4K,
        T::Q5_K => F::Q5K,
        T::Q6_K => F::Q6K,
        T::Q8_K => F::Q8K,
        T::IQ4_NL => F::IQ4NL,
        T::IQ4_XS => F::IQ4XS,
        _ => return None,
    })
}

/// Checks `desc` (whole blocks, the byte count, the buffer extent) and returns its bytes.
fn checked(desc: &WeightDesc) -> Result<(WeightFormat, usize, &[u8])> {
    let bad = |detail: String| CoreError::BadWeight { name: desc.name.clone(), detail };
    let ty = desc.ty;
    let format = format_of(ty).ok_or_else(|| CoreError::Unsupported {
        op: "upload",
        what: format!("weight type {}", ty.name()),
        backend: "wgpu",
    })?;
    if !desc.cols.is_multiple_of(ty.block_size()) {
        return Err(bad(format!(
            "{} columns is not a multiple of the {} block size {}",
            desc.cols,
            ty.name(),
            ty.block_size()
        )));
    }
    let row_bytes = desc.cols / ty.block_size() * ty.type_size();
    let expected = row_bytes.checked_mul(desc.rows);
    if expected != Some(desc.len) {
        return Err(bad(format!(
            "{} × {} {} needs {expected:?} bytes, the descriptor says {}",
            desc.rows,
            desc.cols,
            ty.name(),
            desc.len
        )));
    }
    let all = (*desc.bytes).as_ref();
    let data =
        desc.offset.checked_add(desc.len).and_then(|end| all.get(desc.offset..end)).ok_or_else(
            || {
                bad(format!(
                    "needs {} bytes at offset {}, only {} available",
                    desc.len,
                    desc.offset,
                    all.len()
                ))
            },
        )?;
    Ok((format, row_bytes, data))
}

/// Writes `data` into a new storage buffer (padded to whole words).
fn buffer(gpu: &Gpu, name: &str, data: &[u8]) -> wgpu::Buffer {
    let size = (data.len() as u64).max(4).div_ceil(4) * 4;
    let b = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(name),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let whole = data.len() / 4 * 4;
    if whole > 0 {
        gpu.queue.write_buffer(&b, 0, &data[..whole]);
    }
    if whole < data.len() {
        let mut tail = [0u8; 4];
        tail[..data.len() - whole].copy_from_slice(&data[whole..]);
        gpu.queue.write_buffer(&b, whole as u64, &tail);
    }
    b
}

pub(crate) fn upload(gpu: &Gpu, desc: WeightDesc) -> Result<WgpuWeight> {
    gpu.check("upload")?;
    let (format, row_bytes, data) = checked(&desc)?;
    if desc.layout == WeightLayout::Vector && format != WeightFormat::F32 {
        let mut f = vec![0.0f32; desc.rows * desc.cols];
        realm_quant::dequantize(desc.ty, data, &mut f)
            .map_err(|e| CoreError::BadWeight { name: desc.name.clone(), detail: e.to_string() })?;
        let bytes: Vec<u8> = f.iter().flat_map(|v| v.to_le_bytes()).collect();
        let b = buffer(gpu, &desc.name, &bytes);
        return Ok(WgpuWeight {
            name: desc.name,
            format: WeightFormat::F32,
            rows: desc.rows,
            cols: desc.cols,
            row_bytes: desc.cols * 4,
            chunks: vec![Chunk { buffer: b, row0: 0, rows: desc.rows }],
        });
    }
    let max = usize::try_from(gpu.weight_chunk).unwrap_or(usize::MAX);
    let per_chunk = max.checked_div(row_bytes).unwrap_or(desc.rows.max(1));
    if per_chunk == 0 {
        return Err(CoreError::Unsupported {
            op: "upload",
            what: format!(
                "weight '{}': one row of {row_bytes} bytes exceeds the largest binding ({max} bytes)",
                desc.name
            ),
            backend: "wgpu",
        });
    }
    let mut chunks = Vec::new();
    let mut row0 = 0;
    while row0 < desc.rows || chunks.is_empty() {
        let rows = per_chunk.min(desc.rows - row0);
        let bytes = &data[row0 * row_bytes..(row0 + rows) * row_bytes];
        chunks.push(Chunk { buffer: buffer(gpu, &desc.name, bytes), row0, rows });
        row0 += rows;
        if rows == 0 {
            break;
        }
    }
    gpu.check("upload")?;
    Ok(WgpuWeight { name: desc.name, format, rows: desc.rows, cols: desc.cols, row_bytes, chunks })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Every GGUF type the oracle decodes has an include, with the same block geometry.
    #[test]
    fn formats_agree_with_realm_quant() {
        for ty in GgmlType::ALL.into_iter().filter(|&t| realm_quant::can_dequantize(t)) {
            let f = format_of(ty).unwrap_or_else(|| panic!("{ty:?} has no WGSL include"));
            let (qk, bytes) = f.block();
            assert_eq!((qk as usize, bytes as usize), (ty.block_size(), ty.type_size()), "{ty:?}");
        }
    }
}
