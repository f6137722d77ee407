//! `devstack tables --endpoint URL [--prefix P]`: creates the tables that
//! template.yaml declares in DynamoDB Local and prints `VAR=table` lines.

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    match args.get(1).map(String::as_str) {
        Some("tables") => {
            let Some(endpoint) = flag("--endpoint") else {
                eprintln!("devstack tables: --endpoint URL is required");
                std::process::exit(2);
            };
            let prefix = flag("--prefix").unwrap_or_default();
            let template = flag("--template").map(std::path::PathBuf::from).unwrap_or_else(devstack::tables::template_path);
            let specs = match devstack::tables::from_template(&template) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("devstack: {e}");
                    std::process::exit(1);
                }
            };
            let db = devstack::tables::local_client(&endpoint);
            match devstack::tables::create_all(&db, &specs, &prefix).await {
                Ok(names) => {
                    let mut lines: Vec<_> = names.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                    lines.sort();
                    println!("{}", lines.join("\n"));
                }
                Err(e) => {
                    eprintln!("devstack: {e}");
                    std::process::exit(1);
                }
            }
        }
        _ => {
            eprintln!("usage: devstack tables --endpoint URL [--prefix P] [--template template.yaml]");
            std::process::exit(2);
        }
    }
}
