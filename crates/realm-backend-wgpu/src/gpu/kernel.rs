//! Compute pipelines, cached by [`Variant`].

use std::sync::Arc;

use realm_core::{CoreError, Result};
use realm_shaders::Variant;

use super::{Gpu, TARGET, lock};

/// A compiled kernel and its bind group layout.
pub(crate) struct Kernel {
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) layout: wgpu::BindGroupLayout,
}

impl Gpu {
    /// The pipeline of `v`, compiled on first use (`REALM_DUMP_SHADERS=1` prints its source).
    pub(super) fn kernel(&self, v: Variant) -> Result<Arc<Kernel>> {
        let mut cache = lock(&self.kernels, "pipeline")?;
        if let Some(k) = cache.get(&v) {
            return Ok(k.clone());
        }
        let source = realm_shaders::source(&v, TARGET)
            .map_err(|e| CoreError::Backend { op: "pipeline", detail: e.to_string() })?;
        if std::env::var_os("REALM_DUMP_SHADERS").is_some() {
            eprintln!("// ---- {}\n{source}", v.name());
        }
        let label = v.name();
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        let k = Arc::new(Kernel { pipeline, layout });
        cache.insert(v, k.clone());
        Ok(k)
    }
}
