//! Async readback: copy into a mappable buffer, submit, await the map.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

use realm_core::{CoreError, Result};

use crate::gpu::{Gpu, lock};
use crate::tensor::WgpuTensor;

#[derive(Default)]
struct MapState {
    done: Option<bool>,
    waker: Option<Waker>,
}

/// Starts reading `t`: everything recorded so far is submitted with the copy.
pub(crate) fn read(gpu: &Gpu, t: &WgpuTensor) -> impl Future<Output = Result<Vec<f32>>> + use<> {
    read_range(gpu, t, 0, t.len())
}

/// Starts reading values `first..first + n` of `t` (only those are copied and mapped); a range
/// past its end is an error.
pub(crate) fn read_range(
    gpu: &Gpu,
    t: &WgpuTensor,
    first: usize,
    n: usize,
) -> impl Future<Output = Result<Vec<f32>>> + use<> {
    let started = start(gpu, t, first, n);
    #[cfg(not(target_arch = "wasm32"))]
    let device = gpu.device.clone();
    let check = gpu.checker("read");
    async move {
        let Some((staging, state, n)) = started? else {
            return Ok(Vec::new());
        };
        std::future::poll_fn(|cx| {
            #[cfg(not(target_arch = "wasm32"))]
            let _ = device.poll(wgpu::PollType::Poll);
            let mut s = match state.lock() {
                Ok(s) => s,
                Err(_) => return Poll::Ready(Err(poisoned())),
            };
            match s.done {
                Some(true) => Poll::Ready(Ok(())),
                Some(false) => Poll::Ready(Err(CoreError::Backend {
                    op: "read",
                    detail: "mapping the readback buffer failed (device lost?)".into(),
                })),
                None => {
                    s.waker = Some(cx.waker().clone());
                    // Natively nothing else drives the device: ask to be polled again.
                    if cfg!(not(target_arch = "wasm32")) {
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                }
            }
        })
        .await?;
        // An error the device raised while running this step (a shader the browser rejected,
        // a lost device) may be delivered only now: report it rather than data it invalidated.
        check()?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| CoreError::Backend { op: "read", detail: format!("{e:?}") })?;
        let out: Vec<f32> = view
            .chunks_exact(4)
            .take(n)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        drop(view);
        staging.unmap();
        Ok(out)
    }
}

fn poisoned() -> CoreError {
    CoreError::Backend { op: "read", detail: "a lock was poisoned".into() }
}

type Started = Option<(wgpu::Buffer, Arc<Mutex<MapState>>, usize)>;

fn start(gpu: &Gpu, t: &WgpuTensor, first: usize, n: usize) -> Result<Started> {
    gpu.check("read")?;
    if first.checked_add(n).is_none_or(|end| end > t.len()) {
        return Err(realm_core::shape_err(
            "read",
            format!("values {first}+{n} of a tensor of {}", t.len()),
        ));
    }
    if n == 0 {
        return Ok(None);
    }
    let bytes = (n * 4) as u64;
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("realm readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    gpu.copy(t.buffer(), (first * 4) as u64, &staging, 0, bytes)?;
    gpu.submit()?;
    let state = Arc::new(Mutex::new(MapState::default()));
    let cb = state.clone();
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        if let Ok(mut s) = cb.lock() {
            s.done = Some(r.is_ok());
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    });
    drop(lock(&state, "read")?);
    Ok(Some((staging, state, n)))
}
