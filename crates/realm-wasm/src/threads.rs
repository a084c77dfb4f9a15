//! The threads build (`+atomics`, shared memory): the CPU engine's pool runs on Web Workers
//! that instantiate this same module over the same memory. JS starts them ahead of time
//! (`threadShare` gives them the module and memory; each reports ready), because a Worker
//! cannot start while the thread that created it is blocked. The pool then hands each a
//! closure through `globalThis.realmSpawnThread(ptr)`, and the Worker runs it with `runThread`.

use js_sys::Array;
use wasm_bindgen::prelude::*;

/// A closure for another thread, boxed twice so that a thin pointer crosses to JS.
type Task = Box<dyn FnOnce() + Send + 'static>;

#[wasm_bindgen]
extern "C" {
    /// The engine Worker's `realmSpawnThread(ptr)`: posts `ptr` to an idle thread Worker;
    /// `false` when none is idle.
    #[wasm_bindgen(js_namespace = globalThis, js_name = realmSpawnThread, catch)]
    fn spawn_thread(ptr: u32) -> Result<bool, JsValue>;
}

fn spawn(task: Task) -> bool {
    let ptr = Box::into_raw(Box::new(task));
    if matches!(spawn_thread(ptr as u32), Ok(true)) {
        return true;
    }
    // SAFETY: `ptr` came from `Box::into_raw` above and was not handed to any thread.
    drop(unsafe { Box::from_raw(ptr) });
    false
}

/// Installs the spawner (the engine Worker calls it once its thread Workers are ready).
#[wasm_bindgen(js_name = useThreads)]
pub fn use_threads() {
    realm_runtime::set_cpu_thread_spawner(spawn);
}

/// `[module, memory]` for a thread Worker's `init({ module_or_path, memory })`.
#[wasm_bindgen(js_name = threadShare)]
pub fn thread_share() -> Array {
    Array::of2(&wasm_bindgen::module(), &wasm_bindgen::memory())
}

/// Runs the closure at `ptr` (from `realmSpawnThread`) on this thread Worker, until it returns.
///
/// # Safety (for JS callers)
/// `ptr` must be a value `realmSpawnThread` received, passed here exactly once.
#[wasm_bindgen(js_name = runThread)]
pub fn run_thread(ptr: u32) {
    // SAFETY: per the contract above, `ptr` is a `Box<Task>` leaked by `spawn` and owned now
    // by this call alone.
    let task = unsafe { Box::from_raw(ptr as *mut Task) };
    task();
}
