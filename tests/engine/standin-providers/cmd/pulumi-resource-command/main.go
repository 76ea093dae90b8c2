// Command pulumi-resource-command is a TEST-ONLY STAND-IN for the pulumi-command provider plugin,
// implementing only command:remote:Command to the semantics of pulumi-command v1.2.1. See ../../README.md.
package main

import (
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"

	"dare.local/standin-providers/internal/standin"
)

// The @pulumi/command version the program pins.
const version = "1.2.1"

func main() {
	standin.Main("command", version, map[string]standin.Resource{"command:remote:Command": remoteCommand{}})
}

type remoteCommand struct{}

var loggingValues = []string{"stdout", "stderr", "stdoutAndStderr", "none"}

// Check applies the schema defaults of the connection (and its proxy) and makes the connection
// secret, as the upstream schema marks it.
func (remoteCommand) Check(_, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	checked := news.Copy()
	var failures []*pulumirpc.CheckFailure
	fail := func(prop, reason string) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: prop, Reason: reason})
	}
	if !standin.Set(news, "connection") {
		fail("connection", "Missing required property 'connection'")
	} else {
		checked["connection"] = standin.Secret(connectionDefaults(news["connection"], true))
		if c := standin.Plain(news["connection"]); c.IsObject() && !standin.Set(c.ObjectValue(), "host") {
			fail("connection.host", "Missing required property 'host'")
		}
	}
	if l := standin.Plain(news["logging"]); l.IsString() && !slices.Contains(loggingValues, l.StringValue()) {
		fail("logging", "logging must be one of "+strings.Join(loggingValues, ", "))
	}
	return checked, failures
}

func connectionDefaults(v resource.PropertyValue, withProxy bool) resource.PropertyValue {
	if v.IsSecret() {
		return resource.MakeSecret(connectionDefaults(v.SecretValue().Element, withProxy))
	}
	if !v.IsObject() { // unknown: filled in when known
		return v
	}
	m := v.ObjectValue().Copy()
	standin.SetDefault(m, "user", resource.NewProperty("root"))
	standin.SetDefault(m, "port", resource.NewProperty(22.0))
	standin.SetDefault(m, "dialErrorLimit", resource.NewProperty(10.0))
	standin.SetDefault(m, "perDialTimeout", resource.NewProperty(15.0))
	if withProxy && standin.Set(m, "proxy") {
		m["proxy"] = connectionDefaults(m["proxy"], false)
	}
	return resource.NewProperty(m)
}

// Diff compares old and new inputs; only triggers force replacement (replaceOnChanges), every other
// change is an update that runs the update (or create) command again.
func (remoteCommand) Diff(_ standin.Call, _, oldInputs, news resource.PropertyMap) (map[string]plugin.PropertyDiff, error) {
	detailed := plugin.NewDetailedDiffFromObjectDiff(userKeys(oldInputs).Diff(userKeys(news)), false)
	for path, d := range detailed {
		if standin.TopLevel(path) == "triggers" {
			detailed[path] = d.ToReplace()
		}
	}
	return detailed, nil
}

func userKeys(m resource.PropertyMap) resource.PropertyMap {
	out := m.Copy()
	for k := range out {
		if strings.HasPrefix(string(k), "__") {
			delete(out, k)
		}
	}
	return out
}

// Create runs `create`; its outputs are the inputs plus stdout and stderr (unknown in a preview).
func (remoteCommand) Create(c standin.Call, news resource.PropertyMap) (string, resource.PropertyMap, error) {
	id, err := resource.NewUniqueHex(c.Name(), 8, 0)
	if err != nil {
		return "", nil, err
	}
	outs, err := runStep(c, news, nil, "create")
	return id, outs, err
}

// Update runs `update`, or `create` when there is none, with the previous stdout/stderr available.
func (remoteCommand) Update(c standin.Call, olds, news resource.PropertyMap) (resource.PropertyMap, error) {
	step := "create"
	if standin.Set(news, "update") {
		step = "update"
	}
	return runStep(c, news, olds, step)
}

// Delete runs `delete` with the stored connection, stdin and environment.
func (remoteCommand) Delete(c standin.Call, olds resource.PropertyMap) error {
	if !standin.Set(olds, "delete") {
		return nil
	}
	_, _, err := runnerFor(c, olds, olds).run(c.Ctx, standin.Str(olds, "delete"))
	return err
}

func (remoteCommand) Read(_ standin.Call, state, inputs resource.PropertyMap) (resource.PropertyMap, resource.PropertyMap, error) {
	return state, inputs, nil
}

func runStep(c standin.Call, news, olds resource.PropertyMap, step string) (resource.PropertyMap, error) {
	outs := news.Copy()
	if c.Preview {
		outs["stdout"], outs["stderr"] = standin.Unknown(), standin.Unknown()
		return outs, nil
	}
	outs["stdout"] = resource.NewProperty(standin.Str(olds, "stdout"))
	outs["stderr"] = resource.NewProperty(standin.Str(olds, "stderr"))
	if !standin.Set(news, step) {
		return outs, nil
	}
	stdout, stderr, err := runnerFor(c, news, olds).run(c.Ctx, standin.Str(news, step))
	if err != nil {
		return nil, err // upstream reports no partial state: the step fails as a whole
	}
	outs["stdout"], outs["stderr"] = resource.NewProperty(stdout), resource.NewProperty(stderr)
	return outs, nil
}

// runnerFor reads the command settings from props and the previous outputs from olds.
func runnerFor(c standin.Call, props, olds resource.PropertyMap) *runner {
	p := standin.PlainMap(props)
	env := map[string]string{}
	for k, v := range standin.Obj(p, "environment") {
		if v.IsString() {
			env[string(k)] = v.StringValue()
		}
	}
	logging := standin.Str(p, "logging")
	r := &runner{
		conn:      parseConnection(standin.Obj(p, "connection")),
		stdin:     standin.Str(p, "stdin"),
		env:       env,
		logStdout: logging == "" || logging == "stdout" || logging == "stdoutAndStderr",
		logStderr: logging == "" || logging == "stderr" || logging == "stdoutAndStderr",
		status:    c.Status,
		log:       c.Log,
	}
	if !standin.Set(p, "addPreviousOutputInEnv") || standin.Bool(p, "addPreviousOutputInEnv") {
		r.prevStdout, r.prevStderr = standin.Str(olds, "stdout"), standin.Str(olds, "stderr")
	}
	return r
}
