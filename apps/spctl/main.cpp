// spctl: the operator's command line for saltpeter. The commands live in cmd_*.cpp.
#include "spctl.hpp"

int main(int argc, char** argv) { return spctl::run(argc, argv); }
