package standin

import (
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Plain returns v without secret markers at any depth, for comparing and reading values.
func Plain(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return Plain(v.SecretValue().Element)
	case v.IsArray():
		out := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			out[i] = Plain(e)
		}
		return resource.NewProperty(out)
	case v.IsObject():
		return resource.NewProperty(PlainMap(v.ObjectValue()))
	}
	return v
}

// PlainMap is Plain for a whole map.
func PlainMap(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[k] = Plain(v)
	}
	return out
}

// Unknown is the value of an output that is not known until the resource exists.
func Unknown() resource.PropertyValue { return resource.MakeComputed(resource.NewProperty("")) }

// Secret marks v secret unless it already is (or is null).
func Secret(v resource.PropertyValue) resource.PropertyValue {
	if v.IsSecret() || v.IsNull() {
		return v
	}
	return resource.MakeSecret(v)
}

// Set reports whether m has a non-null value for k (unknown counts as set).
func Set(m resource.PropertyMap, k string) bool {
	v, ok := m[resource.PropertyKey(k)]
	return ok && !Plain(v).IsNull()
}

// The getters read plain maps; absent, null or mistyped values read as the zero value.

func Str(m resource.PropertyMap, k string) string {
	if v := Plain(m[resource.PropertyKey(k)]); v.IsString() {
		return v.StringValue()
	}
	return ""
}

func Int(m resource.PropertyMap, k string) int64 {
	if v := Plain(m[resource.PropertyKey(k)]); v.IsNumber() {
		return int64(v.NumberValue())
	}
	return 0
}

func Bool(m resource.PropertyMap, k string) bool {
	v := Plain(m[resource.PropertyKey(k)])
	return v.IsBool() && v.BoolValue()
}

func Strs(m resource.PropertyMap, k string) []string {
	var out []string
	if v := Plain(m[resource.PropertyKey(k)]); v.IsArray() {
		for _, e := range v.ArrayValue() {
			if e.IsString() {
				out = append(out, e.StringValue())
			}
		}
	}
	return out
}

func Obj(m resource.PropertyMap, k string) resource.PropertyMap {
	if v := Plain(m[resource.PropertyKey(k)]); v.IsObject() {
		return v.ObjectValue()
	}
	return resource.PropertyMap{}
}
