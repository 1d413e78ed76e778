package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/troupe-go/troupe/actors"
	"github.com/troupe-go/troupe/domain"
	troupehttp "github.com/troupe-go/troupe/http"
	"github.com/troupe-go/troupe/http/client"
	"github.com/troupe-go/troupe/persistence/memstore"
)

// exampleServer starts a Troupe server for the examples: a Go handler
// "greet" whose result greets the payload's name, and "resize" declared
// external. It returns the server's URL and a function that stops it.
func exampleServer() (string, func()) {
	logger := slog.New(slog.DiscardHandler)
	store := memstore.New()
	sys, err := actors.New(store, actors.WithLogger(logger), actors.WithExternalTypes("resize"))
	if err != nil {
		panic(err)
	}
	err = sys.Register("greet", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
		var in struct{ Name string }
		if err := json.Unmarshal(payload, &in); err != nil {
			return domain.Permanent(err)
		}
		return domain.SetResult(ctx, map[string]string{"greeting": "hello, " + in.Name})
	}))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := sys.Start(ctx); err != nil {
		panic(err)
	}
	srv, err := troupehttp.NewServer(troupehttp.Config{Addr: "127.0.0.1:0"}, troupehttp.Runtime(sys), troupehttp.WithLogger(logger))
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	return "http://" + srv.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = srv.Stop(ctx)
		_ = sys.Stop(ctx)
	}
}

// Submit a job and wait for its result.
func ExampleClient_Wait() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url)
	if err != nil {
		panic(err)
	}
	job, created, err := c.Submit(ctx, client.SubmitRequest{Type: "greet", Payload: json.RawMessage(`{"name":"Ada"}`)})
	if err != nil {
		panic(err)
	}
	done, err := c.Wait(ctx, job.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(created, done.Status, string(done.Result))
	// Output: true completed {"greeting":"hello, Ada"}
}

// Error answers are *Problem errors.
func ExampleProblem() {
	url, stop := exampleServer()
	defer stop()

	c, _ := client.New(url)
	_, err := c.Get(context.Background(), uuid.Nil)
	var p *client.Problem
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Type, client.IsNotFound(err))
	}
	// Output: 404 urn:troupe:problem:not-found true
}

// Run a Go handler for an external job type of a remote server.
func ExampleWorker() {
	url, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	c, _ := client.New(url)
	w := client.NewWorker(c, client.WorkerOptions{Concurrency: 4})
	w.Handle("resize", domain.HandlerFunc(func(ctx context.Context, payload []byte) error {
		domain.ReportProgress(ctx, 50, "resizing")
		return domain.SetResult(ctx, map[string]int{"width": 640})
	}))
	go func() { _ = w.Run(ctx) }()

	job, _, _ := c.Submit(ctx, client.SubmitRequest{Type: "resize", Payload: json.RawMessage(`{"src":"a.png"}`)})
	done, _ := c.Wait(ctx, job.ID)
	fmt.Println(done.Status, string(done.Result))
	// Output: completed {"width":640}
}

// Iterate over every job that matches a filter, page by page.
func ExampleClient_All() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, _ := client.New(url)
	for range 3 {
		_, _, _ = c.Submit(ctx, client.SubmitRequest{Type: "greet", Queue: "later", Delay: "1h"})
	}
	n := 0
	for job, err := range c.All(ctx, client.Filter{Queue: "later", Limit: 2}) {
		if err != nil {
			panic(err)
		}
		n++
		_ = job
	}
	fmt.Println(n)
	// Output: 3
}

// Give a queue flow settings, shared by every node: here one job at a
// time per customer, in submission order, and at most 20 starts a second
// for the whole queue. Jobs carry the customer as their key.
func ExampleClient_SetQueue() {
	url, stop := exampleServer()
	defer stop()
	ctx := context.Background()

	c, _ := client.New(url)
	q, err := c.SetQueue(ctx, "sync", client.QueueSettings{
		Rate:    &client.Rate{Count: 20, Per: time.Second},
		PerKey:  &client.KeyLimits{Limit: 1},
		Ordered: true,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(q.Name, q.Rate.Count, q.Rate.Per, q.PerKey.Limit, q.Ordered)

	var ids []uuid.UUID
	for _, name := range []string{"Ada", "Grace"} {
		job, _, err := c.Submit(ctx, client.SubmitRequest{Type: "greet", Queue: "sync", Key: "customer-42",
			Payload: json.RawMessage(`{"name":"` + name + `"}`)})
		if err != nil {
			panic(err)
		}
		ids = append(ids, job.ID)
	}
	for _, id := range ids {
		done, _ := c.Wait(ctx, id)
		fmt.Println(done.Key, done.Status, string(done.Result))
	}

	// Settings the server refuses name their fields.
	_, err = c.SetQueue(ctx, "sync", client.QueueSettings{Ordered: true})
	var p *client.Problem
	if errors.As(err, &p) {
		fmt.Println(p.Status, p.Errors[0].Field)
	}
	// Output:
	// sync 20 1s 1 true
	// customer-42 completed {"greeting":"hello, Ada"}
	// customer-42 completed {"greeting":"hello, Grace"}
	// 400 ordered
}
