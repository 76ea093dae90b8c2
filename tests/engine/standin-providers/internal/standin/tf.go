package standin

import (
	"slices"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// TF models a Terraform Plugin Framework resource as pulumi-terraform-bridge serves it (pulumi-random,
// pulumi-tls):
//   - Check validates and marks Sensitive inputs secret; like the bridge it adds no Terraform defaults
//     to the inputs (pkg/pf/tfbridge/provider_check.go): defaults only appear in the outputs.
//   - Diff compares the plan (inputs plus schema defaults) with the stored state, as Terraform's
//     PlanResourceChange does; a changed or unknown input forces replacement (RequiresReplace) unless
//     it is listed in InPlace.
//   - Create generates the values (unknown during preview); Update and Delete only rewrite or drop
//     state, as those resources do; Read re-derives refreshable attributes.
type TF struct {
	Inputs    []string
	Required  []string
	Sensitive []string // attributes the Terraform schema marks Sensitive: secret outputs (and inputs)
	Computed  []string // outputs unknown until Create has run
	InPlace   []string // inputs without RequiresReplace

	// Defaults fills schema defaults into the plan where the input is null.
	Defaults func(plan resource.PropertyMap)
	// Same overrides equality for plan modifiers that tolerate some changes (plain values).
	Same func(key string, old, new resource.PropertyValue) bool
	// Validate checks a fully known plain plan; it returns failures keyed by property.
	Validate func(plan resource.PropertyMap) []*pulumirpc.CheckFailure
	// Generate creates the resource from a fully known plain plan: its id and computed outputs.
	Generate func(plan resource.PropertyMap) (string, resource.PropertyMap, error)
	// Renew reports whether the stored resource is due for replacement regardless of its inputs
	// (the tls certificates' early renewal); such a diff is reported on readyForRenewal.
	Renew func(state, plan resource.PropertyMap, now time.Time) bool
	// Refresh updates state attributes on refresh (Read).
	Refresh func(state resource.PropertyMap, now time.Time)
}

// SetDefault sets plan[k] = v when k is absent or null.
func SetDefault(plan resource.PropertyMap, k string, v resource.PropertyValue) {
	if !Set(plan, k) {
		plan[resource.PropertyKey(k)] = v
	}
}

func (t *TF) plan(news resource.PropertyMap) resource.PropertyMap {
	plan := news.Copy()
	if t.Defaults != nil {
		t.Defaults(plan)
	}
	return plan
}

func (t *TF) secrets(outs resource.PropertyMap) resource.PropertyMap {
	for _, k := range t.Sensitive {
		if v, ok := outs[resource.PropertyKey(k)]; ok {
			outs[resource.PropertyKey(k)] = Secret(v)
		}
	}
	return outs
}

func (t *TF) Check(_, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	checked := t.secrets(news.Copy())
	var failures []*pulumirpc.CheckFailure
	for _, k := range t.Required {
		if !Set(news, k) {
			failures = append(failures, &pulumirpc.CheckFailure{Property: k, Reason: "Missing required property '" + k + "'"})
		}
	}
	// Values still unknown in a preview are checked again when the update resolves them.
	if plan := t.plan(checked); failures == nil && t.Validate != nil && !plan.ContainsUnknowns() {
		failures = t.Validate(PlainMap(plan))
	}
	return checked, failures
}

func (t *TF) Diff(_ Call, olds, _, news resource.PropertyMap) (map[string]plugin.PropertyDiff, error) {
	plan := t.plan(news)
	out := map[string]plugin.PropertyDiff{}
	for _, k := range t.Inputs {
		key := resource.PropertyKey(k)
		o, n := Plain(olds[key]), Plain(plan[key])
		if !n.ContainsUnknowns() && (o.DeepEquals(n) || (t.Same != nil && t.Same(k, o, n))) {
			continue
		}
		kind := plugin.DiffUpdate
		if o.IsNull() {
			kind = plugin.DiffAdd
		} else if n.IsNull() {
			kind = plugin.DiffDelete
		}
		if !slices.Contains(t.InPlace, k) {
			kind = kind.AsReplace()
		}
		out[k] = plugin.PropertyDiff{Kind: kind}
	}
	if t.Renew != nil && t.Renew(olds, plan, time.Now()) {
		out["readyForRenewal"] = plugin.PropertyDiff{Kind: plugin.DiffUpdateReplace}
	}
	return out, nil
}

func (t *TF) Create(c Call, news resource.PropertyMap) (string, resource.PropertyMap, error) {
	plan := t.plan(news)
	outs := plan.Copy()
	if c.Preview {
		for _, k := range t.Computed {
			outs[resource.PropertyKey(k)] = Unknown()
		}
		return "", t.secrets(outs), nil
	}
	id, generated, err := t.Generate(PlainMap(plan))
	if err != nil {
		return "", nil, err
	}
	for k, v := range generated {
		outs[k] = v
	}
	return id, t.secrets(outs), nil
}

// Update writes the plan over the state; computed values stay (UseStateForUnknown).
func (t *TF) Update(_ Call, olds, news resource.PropertyMap) (resource.PropertyMap, error) {
	outs := olds.Copy()
	for _, k := range t.Inputs {
		delete(outs, resource.PropertyKey(k))
	}
	for k, v := range t.plan(news) {
		outs[k] = v
	}
	return t.secrets(outs), nil
}

func (t *TF) Read(_ Call, state, inputs resource.PropertyMap) (resource.PropertyMap, resource.PropertyMap, error) {
	state = state.Copy()
	if t.Refresh != nil {
		t.Refresh(state, time.Now())
	}
	return state, inputs, nil
}

func (t *TF) Delete(Call, resource.PropertyMap) error { return nil }
