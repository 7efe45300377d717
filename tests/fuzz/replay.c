/*
 * Replay for every fuzz target: run each file named on the command line
 * through LLVMFuzzerTestOneInput, as the seeds test does and as a crash
 * found by a long run is checked again. Linked into the plain build of a
 * target; libFuzzer brings its own main. A target that needs a one-time
 * check defines LLVMFuzzerInitialize, libFuzzer's own hook, and both run
 * it first.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

int
main(int argc, char *argv[])
{
	static uint8_t buf[1 << 20]; /* past every target's -max_len */

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		size_t n;

		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%d inputs replayed\n", argc - 1);
	return 0;
}
