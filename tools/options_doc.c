/* Prints the HAKMEM_* table of the linked variant (hk_options_doc), one line
 * per variable. Built once per variant (tools/BUILD.bazel); the lines feed
 * tools/options_table.py, which writes and checks README's table. */
#include "alloc/core/options.h"

int main(void) {
  hk_options_doc(1);
  return 0;
}
