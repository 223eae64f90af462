//! Set-up shared by the fuzz targets (`fuzz_target!(init: hydra_fuzz::init(), ...)`).

/// Make the panic hook follow hydra's own policy. hydra runs third-party image decoders
/// inside `hydra_core::contain`, which turns a panic there (a decoder bug, e.g. in zune-jpeg's
/// IDCT) into that file's error, and the `hydra` binary's hook stays silent for it. The hook
/// libfuzzer-sys installs aborts on *every* panic, caught or not, so without this a contained
/// panic would still be reported as a crash. Here a contained panic is an `Err` like any
/// other, and every other panic still aborts (a finding).
///
/// `HYDRA_FUZZ_STRICT=1` keeps libfuzzer-sys's hook: contained panics are findings too (to
/// hunt decoder bugs worth reporting upstream, or to check what `contain` is hiding).
pub fn init() {
    if std::env::var_os("HYDRA_FUZZ_STRICT").is_some_and(|v| v != "0") {
        return;
    }
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if hydra_core::contain::is_contained() {
            return;
        }
        abort_hook(info);
    }));
}
