//! Prints the expanded WGSL of one variant (`cargo run -p realm-shaders --example dump -- matvec Q4K`).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("{} variants", realm_shaders::table().len());
    for v in realm_shaders::table() {
        let name = v.name();
        if args.iter().skip(1).all(|a| name.contains(a.as_str())) {
            println!("// {name}");
            if let Ok(s) = realm_shaders::source(v, realm_shaders::Target::Browser) {
                println!("{s}");
            }
            return;
        }
    }
}
