/*
 * sycl_stub.c — a stand-in for the Intel SYCL (GPU) ggml backend library that
 * ships inside the PyPI wheel bigdl-core-cpp, next to its Go build of Ollama.
 *
 * Why: the real library aborts at start-up on a machine without an Intel GPU
 * ("can not find preferred GPU platform"), which takes the whole server down.
 * The ollama binary links against it, so it has to exist and export these
 * symbols; this stub registers a backend called "SYCL" that has zero devices,
 * and Ollama then falls back to its bundled CPU backend.
 *
 * Built by scripts/real-ollama.sh with gcc under the original library's file
 * name (libggml-sycl.so for server 0.9.3, libollama-ggml-sycl.so for 0.5.4).
 *
 * The struct layout mirrors ggml's backend-registry ABI
 * (ggml-backend-impl.h: struct ggml_backend_reg / ggml_backend_reg_i).
 */
#include <stdbool.h>
#include <stddef.h>

typedef struct stub_reg *stub_reg_t;

struct stub_reg_iface {
    const char *(*get_name)(stub_reg_t reg);
    size_t (*get_device_count)(stub_reg_t reg);
    void *(*get_device)(stub_reg_t reg, size_t index);
    void *(*get_proc_address)(stub_reg_t reg, const char *name);
};

struct stub_reg {
    int api_version;
    struct stub_reg_iface iface;
    void *context;
};

static const char *reg_name(stub_reg_t reg) { (void)reg; return "SYCL"; }
static size_t reg_device_count(stub_reg_t reg) { (void)reg; return 0; }
static void *reg_device(stub_reg_t reg, size_t index) { (void)reg; (void)index; return NULL; }
static void *reg_proc_address(stub_reg_t reg, const char *name) { (void)reg; (void)name; return NULL; }

static struct stub_reg the_reg = {
    .api_version = 1,
    .iface = { reg_name, reg_device_count, reg_device, reg_proc_address },
    .context = NULL,
};

/* ---- the public ggml-sycl.h API, every entry point reporting "no device" ---- */

stub_reg_t ggml_backend_sycl_reg(void) { return &the_reg; }

int ggml_backend_sycl_get_device_count(void) { return 0; }

void *ggml_backend_sycl_init(int device) { (void)device; return NULL; }

bool ggml_backend_is_sycl(void *backend) { (void)backend; return false; }

void *ggml_backend_sycl_buffer_type(int device) { (void)device; return NULL; }

void *ggml_backend_sycl_host_buffer_type(void) { return NULL; }

void *ggml_backend_sycl_split_buffer_type(const float *tensor_split) { (void)tensor_split; return NULL; }

void ggml_backend_sycl_print_sycl_devices(void) {}

void ggml_backend_sycl_get_gpu_list(int *id_list, int max_len) {
    for (int i = 0; i < max_len; i++) id_list[i] = -1;
}

void ggml_backend_sycl_get_device_description(int device, char *description, size_t size) {
    (void)device;
    if (size > 0) description[0] = '\0';
}

void ggml_backend_sycl_get_device_name(int device, char *name, size_t size) {
    (void)device;
    if (size > 0) name[0] = '\0';
}

void ggml_backend_sycl_get_device_memory(int device, size_t *free, size_t *total) {
    (void)device;
    *free = 0;
    *total = 0;
}
