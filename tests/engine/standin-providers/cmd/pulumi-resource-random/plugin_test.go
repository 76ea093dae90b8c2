package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The test binary doubles as the plugin: run as a child with this variable set, it is main().
func TestMain(m *testing.M) {
	if os.Getenv("STANDIN_RUN_PLUGIN") == "1" {
		os.Args = os.Args[:1]
		main()
		return
	}
	os.Exit(m.Run())
}

// TestPluginSpeaksTheProviderProtocol starts the plugin as the engine does (it prints its port) and
// creates a RandomPassword over gRPC: the result must come back as a secret.
func TestPluginSpeaksTheProviderProtocol(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "STANDIN_RUN_PLUGIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pulumirpc.NewResourceProviderClient(conn)
	ctx := context.Background()

	info, err := client.GetPluginInfo(ctx, &emptypb.Empty{})
	if err != nil || info.GetVersion() != version {
		t.Fatalf("plugin info %v %v", info, err)
	}
	opts := plugin.MarshalOptions{KeepSecrets: true, KeepUnknowns: true}
	news, _ := plugin.MarshalProperties(resource.NewPropertyMapFromMap(map[string]any{"length": 32, "special": false}), opts)
	urn := "urn:pulumi:dev::dare::random:index/randomPassword:RandomPassword::pw"
	checked, err := client.Check(ctx, &pulumirpc.CheckRequest{Urn: urn, News: news})
	if err != nil || len(checked.GetFailures()) != 0 {
		t.Fatalf("check %v %v", checked, err)
	}
	created, err := client.Create(ctx, &pulumirpc.CreateRequest{Urn: urn, Properties: checked.GetInputs()})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := plugin.UnmarshalProperties(created.GetProperties(), opts)
	if err != nil || created.GetId() != "none" || !outs["result"].IsSecret() || len(outs["result"].SecretValue().Element.StringValue()) != 32 {
		t.Fatalf("create %q %v %v", created.GetId(), outs, err)
	}
}
