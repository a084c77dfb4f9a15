//! Stream a chat answer from a realm-server: `REALM_BASE_URL=http://127.0.0.1:8080
//! REALM_API_KEY=KEY cargo run -p realm-client --example chat`.
use realm_client::{Client, StreamExt, message, protocol::ChatCompletionRequest};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), realm_client::Error> {
    let url = std::env::var("REALM_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let mut client = Client::new(url);
    if let Ok(key) = std::env::var("REALM_API_KEY") {
        client = client.api_key(key);
    }
    let req = ChatCompletionRequest {
        messages: vec![message("user", "Name three colours.")],
        max_tokens: Some(32),
        ..Default::default()
    };
    let mut stream = client.chat_stream(&req).await?;
    while let Some(chunk) = stream.next().await {
        for choice in chunk?.choices {
            print!("{}", choice.delta.content.unwrap_or_default());
        }
    }
    println!();
    Ok(())
}
