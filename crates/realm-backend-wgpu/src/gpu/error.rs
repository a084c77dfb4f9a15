//! The error slot: wgpu reports validation errors, out-of-memory and device loss through
//! callbacks; the first is kept here until an op, submit or read can return it.

use std::sync::{Arc, Mutex};

use realm_core::{CoreError, Result};

use super::lock;

/// An error reported by wgpu's callbacks, kept until an op can return it.
#[derive(Default)]
pub(crate) struct ErrorSlot {
    error: Option<CoreError>,
}

fn from_wgpu(e: wgpu::Error) -> CoreError {
    match e {
        wgpu::Error::OutOfMemory { .. } => {
            CoreError::OutOfMemory { what: "a GPU allocation".into(), bytes: 0 }
        }
        wgpu::Error::Validation { description, .. } => {
            CoreError::Backend { op: "wgpu validation", detail: description }
        }
        wgpu::Error::Internal { description, .. } => {
            CoreError::Backend { op: "wgpu", detail: description }
        }
    }
}

/// A slot fed by `device`'s uncaptured-error and device-lost callbacks.
pub(super) fn install(device: &wgpu::Device) -> Arc<Mutex<ErrorSlot>> {
    let errors = Arc::new(Mutex::new(ErrorSlot::default()));
    let slot = errors.clone();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
        if let Ok(mut s) = slot.lock() {
            s.error.get_or_insert(from_wgpu(e));
        }
    }));
    let slot = errors.clone();
    device.set_device_lost_callback(move |reason, message| {
        if let Ok(mut s) = slot.lock() {
            s.error = Some(CoreError::DeviceLost { reason: format!("{reason:?}: {message}") });
        }
    });
    errors
}

/// The kept error, if any: taken, except a lost device, which stays reported.
pub(super) fn take_error(errors: &Mutex<ErrorSlot>, op: &'static str) -> Result<()> {
    let mut s = lock(errors, op)?;
    match &s.error {
        None => Ok(()),
        Some(e @ CoreError::DeviceLost { .. }) => Err(e.clone()),
        Some(_) => Err(s.error.take().unwrap_or(CoreError::Backend { op, detail: String::new() })),
    }
}
