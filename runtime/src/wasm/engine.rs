//! The wasmtime engine, configured for determinism and bounded resource use.

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Strategy};

/// How the engine compiles and allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// Compile functions on several threads. Off under the simulator, which forbids threads.
    pub parallel_compilation: bool,
    /// Pre-allocate instance slots (fast instantiation, fixed address-space reservation).
    /// For the real node; off by default.
    pub pooling_allocator: bool,
    /// Instance slots of the pooling allocator.
    pub pooled_instances: u32,
    /// Largest linear memory an instance may have.
    pub max_memory_bytes: usize,
    /// Bytes of each pooled memory slot kept resident and reset with memset between calls.
    pub pooled_memory_keep_resident_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            parallel_compilation: false,
            pooling_allocator: false,
            pooled_instances: 64,
            max_memory_bytes: 64 << 20,
            pooled_memory_keep_resident_bytes: 2 << 20,
        }
    }
}

/// Builds an engine: cranelift, fuel metering (deterministic, unlike epochs), NaN
/// canonicalization, deterministic relaxed SIMD. No threads: the `threads` cargo feature of
/// wasmtime is not enabled, so shared memories and atomics-wait cannot even be compiled. No WASI.
pub fn build_engine(options: &EngineOptions) -> Result<Engine, wasmtime::Error> {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .consume_fuel(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .parallel_compilation(options.parallel_compilation);
    if options.pooling_allocator {
        let mut pooling = PoolingAllocationConfig::default();
        pooling.total_core_instances(options.pooled_instances);
        pooling.total_memories(options.pooled_instances);
        pooling.max_memory_size(options.max_memory_bytes);
        // Reset a returned slot's first pages with memset instead of giving them back to the
        // kernel: an app call touches a few hundred KiB (stack top, data, a small heap), and
        // madvise/page-fault churn on every call costs more than the call itself.
        pooling.linear_memory_keep_resident(options.pooled_memory_keep_resident_bytes);
        pooling.table_keep_resident(64 * 1024);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    Engine::new(&config)
}
