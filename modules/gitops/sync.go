package gitops

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// File is one file for the manifests layer. Path is slash-separated and
// relative to the layer's root, so it starts with SyncDir.
type File struct {
	Path string
	Data []byte
	Mode int64
}

// kustomizeFile holds the fields of kustomize.config.k8s.io/v1beta1
// Kustomization that the sync folder uses. sigs.k8s.io/kustomize/api is not
// a dependency, and pulling it in for three fields is not worth it.
type kustomizeFile struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

const (
	syncJobFile  = "sync-job.yaml"
	versionAnnot = "k2s.io/addon-version"
	// excludeMarker makes K2s's exporter skip the file when it scans
	// manifests for images to pack, once the Job has been copied into the
	// addon's directory on the host; the pause image must never be packed.
	excludeMarker = "## exclude-from-export"
)

// SyncFolder returns the files of SyncDir, in the order they should be
// archived: a kustomization naming only the sync Job, and the Job.
//
// Like K2s, the kustomization does not list the addon's own manifests:
// those are applied on the host by the addon's Enable script after the Job
// has copied them there, and Flux applying them as well would fight it.
func SyncFolder(a Addon) ([]File, error) {
	a, err := a.resolved()
	if err != nil {
		return nil, err
	}
	k, err := yaml.Marshal(kustomizeFile{
		APIVersion: "kustomize.config.k8s.io/v1beta1",
		Kind:       "Kustomization",
		Resources:  []string{syncJobFile},
	})
	if err != nil {
		return nil, fmt.Errorf("gitops: marshal kustomization: %w", err)
	}
	job, err := yaml.Marshal(syncJob(a))
	if err != nil {
		return nil, fmt.Errorf("gitops: marshal sync Job: %w", err)
	}
	header := excludeMarker + "\n# Copies addon " + a.ExportName() + " v" + a.Version +
		" from the registry onto the Windows host (K2s Sync-Addons.ps1).\n"
	return []File{
		{Path: SyncDir + "/kustomization.yaml", Data: k, Mode: 0o644},
		{Path: SyncDir + "/" + syncJobFile, Data: append([]byte(header), job...), Mode: 0o644},
	}, nil
}

// syncJob is K2s's gitops-sync Job. It is spelt as a map because
// k8s.io/api is not a direct dependency of this module; the tests check
// every field path against batch/v1.
//
// The Job reads the registry address, the K2s install directory and the
// insecure flag from the cluster's addon-sync-config ConfigMap rather than
// from Addon: the host side of a cluster may reach the registry under a
// different name than Flux does, and that ConfigMap is what K2s maintains.
func syncJob(a Addon) map[string]any {
	// The version sits in the pod template as well because that is
	// immutable: a new version then forces Flux to replace the Job, which
	// runs it again; a metadata-only change would just be patched in.
	version := map[string]any{versionAnnot: a.Version}
	return map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata": map[string]any{
			"name":        a.objectName(),
			"namespace":   a.TargetNamespace,
			"labels":      syncLabels(true),
			"annotations": version,
		},
		"spec": map[string]any{
			"ttlSecondsAfterFinished": 300,
			"activeDeadlineSeconds":   300,
			"backoffLimit":            3,
			"template": map[string]any{
				"metadata": map[string]any{
					"labels":      syncLabels(false),
					"annotations": version,
				},
				"spec": syncPodSpec(a),
			},
		},
	}
}

// syncLabels are K2s's labels of the sync Job (partOf) and of its pod.
func syncLabels(partOf bool) map[string]any {
	l := map[string]any{
		"app.kubernetes.io/name":      "addon-sync",
		"app.kubernetes.io/component": "processor",
	}
	if partOf {
		l["app.kubernetes.io/part-of"] = "k2s"
	}
	return l
}

// syncPodSpec runs the sync container as a HostProcess pod on a Windows
// node, with the sync script mounted from its ConfigMap.
func syncPodSpec(a Addon) map[string]any {
	return map[string]any{
		"restartPolicy":      "OnFailure",
		"serviceAccountName": "addon-sync-processor",
		"nodeSelector":       map[string]any{"kubernetes.io/os": "windows"},
		"tolerations": []any{map[string]any{
			"key": "OS", "operator": "Equal", "value": "Windows", "effect": "NoSchedule",
		}},
		// HostProcess is what lets the Job write to the K2s
		// installation on the Windows host.
		"hostNetwork": true,
		"hostPID":     true,
		"securityContext": map[string]any{"windowsOptions": map[string]any{
			"hostProcess":   true,
			"runAsUserName": `NT AUTHORITY\SYSTEM`,
		}},
		"containers": []any{syncContainer(a)},
		"volumes": []any{map[string]any{
			"name":      "sync-script",
			"configMap": map[string]any{"name": "addon-sync-script"},
		}},
	}
}

// syncContainer runs K2s's Sync-Addons.ps1 for the addon.
func syncContainer(a Addon) map[string]any {
	fromConfig := func(key string) map[string]any {
		return map[string]any{
			"name": key,
			"valueFrom": map[string]any{"configMapKeyRef": map[string]any{
				"name": "addon-sync-config",
				"key":  key,
			}},
		}
	}
	return map[string]any{
		"name":            "addon-sync",
		"image":           a.SyncImage,
		"imagePullPolicy": "IfNotPresent",
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "100m", "memory": "128Mi"},
			"limits":   map[string]any{"cpu": "500m", "memory": "512Mi"},
		},
		"command": []any{
			"powershell.exe", "-ExecutionPolicy", "Bypass", "-NonInteractive",
			"-File", `C:\scripts\Sync-Addons.ps1`,
			"-RegistryUrl", "$(REGISTRY_URL)",
			"-K2sInstallDir", "$(K2S_INSTALL_DIR)",
			"-OrasExe", `$(K2S_INSTALL_DIR)\bin\oras.exe`,
			"-Insecure", "$(INSECURE)",
			"-AddonName", a.ExportName(),
		},
		"env": []any{
			map[string]any{"name": "CONTAINER_SANDBOX_MOUNT_POINT", "value": `C:\`},
			fromConfig("REGISTRY_URL"),
			fromConfig("K2S_INSTALL_DIR"),
			fromConfig("INSECURE"),
		},
		"volumeMounts": []any{map[string]any{
			"name": "sync-script", "mountPath": `C:\scripts`, "readOnly": true,
		}},
	}
}
