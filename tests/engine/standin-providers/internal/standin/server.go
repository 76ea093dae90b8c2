// Package standin is the gRPC side shared by the test-only stand-in provider plugins: it speaks the
// Pulumi resource provider protocol and hands each call to a Resource as property maps in which
// secrets and unknowns are kept, so that they flow through exactly as the engine sent them.
package standin

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Call carries what a resource operation may need besides its properties.
type Call struct {
	Ctx     context.Context
	URN     resource.URN
	Preview bool
	host    *provider.HostClient
}

// Name is the resource's name (the last URN component).
func (c Call) Name() string { return c.URN.Name() }

// Log sends a diagnostic that stays in the update's output.
func (c Call) Log(sev diag.Severity, msg string) {
	if c.host != nil {
		_ = c.host.Log(c.Ctx, sev, c.URN, msg)
	}
}

// Status sends an ephemeral message (shown while the step runs, then dropped), as upstream streams
// command output and dial retries.
func (c Call) Status(msg string) {
	if c.host != nil {
		_ = c.host.LogStatus(c.Ctx, diag.Info, c.URN, msg)
	}
}

// Resource is one resource type. Olds are the stored outputs, oldInputs the stored inputs, news the
// checked new inputs.
type Resource interface {
	Check(olds, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure)
	Diff(c Call, olds, oldInputs, news resource.PropertyMap) (map[string]plugin.PropertyDiff, error)
	Create(c Call, news resource.PropertyMap) (string, resource.PropertyMap, error)
	Update(c Call, olds, news resource.PropertyMap) (resource.PropertyMap, error)
	Read(c Call, state, inputs resource.PropertyMap) (resource.PropertyMap, resource.PropertyMap, error)
	Delete(c Call, olds resource.PropertyMap) error
}

// Main serves the resources (keyed by type token) until the engine stops the plugin.
func Main(name, version string, resources map[string]Resource) {
	err := provider.Main(name, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &server{name: name, version: version, resources: resources, host: host}, nil
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-%s (stand-in): %v\n", name, err)
		os.Exit(1)
	}
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	name, version string
	resources     map[string]Resource
	host          *provider.HostClient
}

var opts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, KeepResources: true}

// unmarshal reads request property maps; an absent one is empty.
func unmarshal(structs ...*structpb.Struct) ([]resource.PropertyMap, error) {
	maps := make([]resource.PropertyMap, len(structs))
	for i, st := range structs {
		m, err := plugin.UnmarshalProperties(st, opts)
		if err != nil {
			return nil, err
		}
		if maps[i] = m; m == nil {
			maps[i] = resource.PropertyMap{}
		}
	}
	return maps, nil
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, opts)
}

// lookup finds the resource type of urn and unmarshals the request's property maps.
func (s *server) lookup(ctx context.Context, urn string, preview bool, structs ...*structpb.Struct) (Resource, Call, []resource.PropertyMap, error) {
	u := resource.URN(urn)
	r, ok := s.resources[string(u.Type())]
	if !ok {
		return nil, Call{}, nil, status.Errorf(codes.InvalidArgument, "stand-in %s provider has no resource type %q", s.name, u.Type())
	}
	maps, err := unmarshal(structs...)
	return r, Call{Ctx: ctx, URN: u, Preview: preview, host: s.host}, maps, err
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: s.version}, nil
}

func (s *server) Handshake(context.Context, *pulumirpc.ProviderHandshakeRequest) (*pulumirpc.ProviderHandshakeResponse, error) {
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

// Provider configuration: none of the stand-ins has any, so anything is accepted unchanged.
func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true, AcceptResources: true}, nil
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (s *server) Check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	r, _, m, err := s.lookup(ctx, req.GetUrn(), false, req.GetOlds(), req.GetNews())
	if err != nil {
		return nil, err
	}
	checked, failures := r.Check(m[0], m[1])
	inputs, err := marshal(checked)
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, err
}

func (s *server) Diff(ctx context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	r, call, m, err := s.lookup(ctx, req.GetUrn(), false, req.GetOlds(), req.GetNews(), req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	if req.GetOldInputs() == nil { // engines that do not send old inputs: the state holds them
		m[2] = m[0]
	}
	detailed, err := r.Diff(call, m[0], m[2], m[1])
	if err != nil {
		return nil, err
	}
	return DiffResponse(detailed), nil
}

// DiffResponse turns per-path changes into the engine's answer: a path's top-level property is
// replaced if any of its changes is a replace kind. No stand-in asks for delete-before-replace.
func DiffResponse(detailed map[string]plugin.PropertyDiff) *pulumirpc.DiffResponse {
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true,
		DetailedDiff: map[string]*pulumirpc.PropertyDiff{}}
	diffs, replaces := map[string]bool{}, map[string]bool{}
	for path, d := range detailed {
		head := TopLevel(path)
		// plugin.DiffKind and pulumirpc.PropertyDiff_Kind share their numbering (ADD=0 … UPDATE_REPLACE=5).
		resp.DetailedDiff[path] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_Kind(d.Kind), InputDiff: d.InputDiff}
		diffs[head] = true
		if d.Kind.IsReplace() {
			replaces[head] = true
		}
	}
	for k := range diffs {
		resp.Diffs = append(resp.Diffs, k)
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	for k := range replaces {
		resp.Replaces = append(resp.Replaces, k)
	}
	return resp
}

// TopLevel is the top-level property a property path (such as "triggers[0]") starts with.
func TopLevel(path string) string {
	if p, err := resource.ParsePropertyPath(path); err == nil && len(p) > 0 {
		if s, ok := p[0].(string); ok {
			return s
		}
	}
	return strings.SplitN(path, ".", 2)[0]
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	r, call, m, err := s.lookup(ctx, req.GetUrn(), req.GetPreview(), req.GetProperties())
	if err != nil {
		return nil, err
	}
	id, outs, err := r.Create(call, m[0])
	if err != nil {
		return nil, err
	}
	props, err := marshal(outs)
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, err
}

func (s *server) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	r, call, m, err := s.lookup(ctx, req.GetUrn(), req.GetPreview(), req.GetOlds(), req.GetNews())
	if err != nil {
		return nil, err
	}
	outs, err := r.Update(call, m[0], m[1])
	if err != nil {
		return nil, err
	}
	props, err := marshal(outs)
	return &pulumirpc.UpdateResponse{Properties: props}, err
}

func (s *server) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	r, call, m, err := s.lookup(ctx, req.GetUrn(), false, req.GetProperties(), req.GetInputs())
	if err != nil {
		return nil, err
	}
	state, inputs, err := r.Read(call, m[0], m[1])
	if err != nil {
		return nil, err
	}
	props, err := marshal(state)
	if err != nil {
		return nil, err
	}
	ins, err := marshal(inputs)
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: props, Inputs: ins}, err
}

func (s *server) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	r, call, m, err := s.lookup(ctx, req.GetUrn(), false, req.GetProperties())
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, r.Delete(call, m[0])
}
