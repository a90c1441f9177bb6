/* MPI hello world: one line per rank, the seed scripts' text followed by the CPU the rank runs on.
 * The CPU is the one the launcher bound the rank to when its affinity mask holds a single CPU,
 * else the CPU it is running on now. */
#define _GNU_SOURCE
#include <mpi.h>
#include <sched.h>
#include <stdio.h>

static int current_cpu(void) {
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof mask, &mask) == 0 && CPU_COUNT(&mask) == 1) {
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &mask)) return c;
  }
  return sched_getcpu();
}

int main(int argc, char **argv) {
  int rank, size, len;
  char name[MPI_MAX_PROCESSOR_NAME];
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Get_processor_name(name, &len);
  printf("Hello world from processor %s, rank %d out of %d processors, cpu %d\n",
         name, rank, size, current_cpu());
  fflush(stdout);
  MPI_Finalize();
  return 0;
}
