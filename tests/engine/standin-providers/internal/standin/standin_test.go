package standin

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

// toy is a TF resource with one replace-forcing input (a, default "x"), one in-place input (b) and a
// secret computed output.
func toy() *TF {
	return &TF{
		Inputs: []string{"a", "b"}, Required: []string{"b"}, InPlace: []string{"b"},
		Sensitive: []string{"out"}, Computed: []string{"out"},
		Defaults: func(p resource.PropertyMap) { SetDefault(p, "a", resource.NewProperty("x")) },
		Generate: func(p resource.PropertyMap) (string, resource.PropertyMap, error) {
			return "id-" + Str(p, "a"), resource.PropertyMap{"out": resource.NewProperty(Str(p, "a") + Str(p, "b"))}, nil
		},
	}
}

func grpcServer() *server {
	return &server{name: "toy", version: "1.0.0", resources: map[string]Resource{"toy:index:Toy": toy()}}
}

const urn = "urn:pulumi:dev::proj::toy:index:Toy::t"

func mustMarshal(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustUnmarshal(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return m[0]
}

func TestCreateOverGRPCKeepsSecretsAndPreviewUnknowns(t *testing.T) {
	s := grpcServer()
	news := resource.PropertyMap{"b": resource.MakeSecret(resource.NewProperty("s"))}
	prev, err := s.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustMarshal(t, news), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	outs := mustUnmarshal(t, prev.GetProperties())
	if !outs["out"].ContainsUnknowns() || !outs["b"].IsSecret() || Str(outs, "a") != "x" {
		t.Fatalf("preview outputs: %v", outs)
	}
	created, err := s.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustMarshal(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	outs = mustUnmarshal(t, created.GetProperties())
	if created.GetId() != "id-x" || !outs["out"].IsSecret() || Str(outs, "out") != "xs" || !outs["b"].IsSecret() {
		t.Fatalf("created %q %v", created.GetId(), outs)
	}
}

func TestCheckReportsMissingRequired(t *testing.T) {
	resp, err := grpcServer().Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: mustMarshal(t, resource.PropertyMap{})})
	if err != nil || len(resp.GetFailures()) != 1 || resp.GetFailures()[0].GetProperty() != "b" {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestTFDiff(t *testing.T) {
	state := resource.PropertyMap{"a": resource.NewProperty("x"), "b": resource.NewProperty("1"), "out": resource.NewProperty("x1")}
	cases := []struct {
		name     string
		news     resource.PropertyMap
		replaces []string
		diffs    []string
	}{
		{"default equals state", resource.PropertyMap{"b": resource.NewProperty("1")}, nil, nil},
		{"secretness alone is no change", resource.PropertyMap{"b": resource.MakeSecret(resource.NewProperty("1"))}, nil, nil},
		{"in-place input", resource.PropertyMap{"b": resource.NewProperty("2")}, nil, []string{"b"}},
		{"replace-forcing input", resource.PropertyMap{"a": resource.NewProperty("y"), "b": resource.NewProperty("1")}, []string{"a"}, []string{"a"}},
		{"unknown input replaces", resource.PropertyMap{"a": Unknown(), "b": resource.NewProperty("1")}, []string{"a"}, []string{"a"}},
	}
	for _, c := range cases {
		d, _ := toy().Diff(Call{}, state, nil, c.news)
		resp := DiffResponse(d)
		slices.Sort(resp.Replaces)
		slices.Sort(resp.Diffs)
		if !slices.Equal(resp.Replaces, c.replaces) || !slices.Equal(resp.Diffs, c.diffs) {
			t.Errorf("%s: replaces %v diffs %v", c.name, resp.Replaces, resp.Diffs)
		}
		if (len(c.diffs) > 0) != (resp.Changes == pulumirpc.DiffResponse_DIFF_SOME) || resp.DeleteBeforeReplace {
			t.Errorf("%s: changes %v", c.name, resp.Changes)
		}
	}
}

func TestTFUpdateKeepsComputedAndRenew(t *testing.T) {
	r := toy()
	state := resource.PropertyMap{"a": resource.NewProperty("x"), "b": resource.NewProperty("1"), "out": resource.NewProperty("x1")}
	outs, _ := r.Update(Call{}, state, resource.PropertyMap{"b": resource.NewProperty("2")})
	if Str(outs, "b") != "2" || Str(outs, "out") != "x1" || !outs["out"].IsSecret() {
		t.Fatalf("update: %v", outs)
	}
	r.Renew = func(_, _ resource.PropertyMap, _ time.Time) bool { return true }
	d, _ := r.Diff(Call{}, state, nil, resource.PropertyMap{"b": resource.NewProperty("1")})
	if resp := DiffResponse(d); !slices.Equal(resp.Replaces, []string{"readyForRenewal"}) {
		t.Fatalf("renew: %v", resp)
	}
}

func TestDiffResponseGroupsNestedPaths(t *testing.T) {
	resp := DiffResponse(map[string]plugin.PropertyDiff{
		"triggers[0]":     {Kind: plugin.DiffUpdateReplace},
		"connection.host": {Kind: plugin.DiffUpdate},
	})
	slices.Sort(resp.Diffs)
	if !slices.Equal(resp.Diffs, []string{"connection", "triggers"}) || !slices.Equal(resp.Replaces, []string{"triggers"}) ||
		resp.DetailedDiff["triggers[0]"].GetKind() != pulumirpc.PropertyDiff_UPDATE_REPLACE ||
		resp.DetailedDiff["connection.host"].GetKind() != pulumirpc.PropertyDiff_UPDATE {
		t.Fatalf("%v", resp)
	}
}
