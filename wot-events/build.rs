//! Runs the examples of the guide page `docs/events.md` as doc tests when the crate is
//! built inside its workspace; a published package has no `docs/` beside it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(wot_events_guide)");
    println!("cargo::rerun-if-changed=../docs/events.md");
    if std::path::Path::new("../docs/events.md").exists() {
        println!("cargo::rustc-cfg=wot_events_guide");
    }
}
