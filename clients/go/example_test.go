package realm_test

import (
	"context"
	"fmt"
	"os"

	realm "github.com/realm-ai/realm/clients/go"
)

// A whole chat answer; REALM_URL and REALM_API_KEY are set by the tests' server.
func ExampleClient_ChatCompletion() {
	client := realm.NewClient(os.Getenv("REALM_URL"), realm.WithAPIKey(os.Getenv("REALM_API_KEY")))
	resp, err := client.ChatCompletion(context.Background(), &realm.ChatCompletionRequest{
		Messages: []realm.Message{{Role: "user", Content: "Name three colours."}},
		Sampling: realm.Sampling{MaxTokens: realm.Ptr(8), IgnoreEOS: true, Seed: realm.Ptr(int64(1))},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Choices[0].FinishReason, resp.Usage.CompletionTokens)
	// Output: length 8
}

// Two requests on one realm.v1 connection, read from their event channels.
func ExampleConn_Chat() {
	ctx := context.Background()
	client := realm.NewClient(os.Getenv("REALM_URL"), realm.WithAPIKey(os.Getenv("REALM_API_KEY")))
	conn, err := client.Connect(ctx)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	var reqs []*realm.Request
	for _, q := range []string{"Say hi.", "Count to three."} {
		r, err := conn.Chat(ctx, &realm.ChatCompletionRequest{Messages: []realm.Message{{Role: "user", Content: q}},
			Sampling: realm.Sampling{MaxTokens: realm.Ptr(4), IgnoreEOS: true}})
		if err != nil {
			panic(err)
		}
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		var done realm.Event
		for ev := range r.Events() {
			if ev.Type == "done" {
				done = ev
			}
		}
		if r.Err() != nil {
			panic(r.Err())
		}
		fmt.Println(done.Choices[0].FinishReason, done.Usage.CompletionTokens)
	}
	// Output:
	// length 4
	// length 4
}
