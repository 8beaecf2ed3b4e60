#include <iostream>

#include "saltpeter/version.hpp"

int main() {
    std::cout << "spd " << saltpeter::version() << "\n";
    return 0;
}
