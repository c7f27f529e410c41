use parallel_evm_core::{executor::{execute_block, ExecuteOptions}, fixture::Fixture, ModeRequest};
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let fx = Fixture::load(std::path::Path::new(&a[1]), None).unwrap();
    let mode: ModeRequest = a[2].parse().unwrap();
    let n: usize = a[3].parse().unwrap();
    let threads: usize = a.get(4).map(|s| s.parse().unwrap()).unwrap_or(2);
    let opts = ExecuteOptions { chain: fx.chain.clone(), mode, threads };
    let t = std::time::Instant::now();
    let mut ex = 0;
    for _ in 0..n { let r = execute_block(&fx.block, &fx.state, &opts).unwrap(); ex += r.stats.execution_us; }
    println!("avg total {:.3} ms, avg exec {:.3} ms", t.elapsed().as_secs_f64()*1000.0/n as f64, ex as f64/1000.0/n as f64);
}
