# The OrleansLsn silo: `dotnet OrleansLsn.Silo.dll silo`, configured only through OrleansLsn__* environment variables
# (README, "Run with Docker"; the keys are ARCHITECTURE's "Silo configuration").
#   docker build -t orleanslsn/silo .
# Where no registry answers, build on the local stand-ins of deploy/local-images.sh:
#   docker build --build-arg SDK_IMAGE=orleanslsn-local/dotnet-sdk:10.0 \
#                --build-arg RUNTIME_IMAGE=orleanslsn-local/dotnet-aspnet:10.0 -t orleanslsn/silo .
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0

FROM ${SDK_IMAGE} AS build
WORKDIR /src
# Project files first: the restore layer is reused until a project or package version changes.
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Directory.Build.props src/
COPY src/Interfaces/OrleansLsn.Interfaces.csproj src/Interfaces/
COPY src/Grains/OrleansLsn.Grains.csproj src/Grains/
COPY src/PostgresLocal/OrleansLsn.PostgresLocal.csproj src/PostgresLocal/
COPY src/Waiting/OrleansLsn.Waiting.csproj src/Waiting/
COPY src/Client/OrleansLsn.Client.csproj src/Client/
COPY src/Silo/OrleansLsn.Silo.csproj src/Silo/
RUN dotnet restore src/Silo/OrleansLsn.Silo.csproj
COPY src/ src/
RUN dotnet publish src/Silo/OrleansLsn.Silo.csproj -c Release --no-restore -o /app -p:UseAppHost=false

FROM ${RUNTIME_IMAGE}
WORKDIR /app
COPY --from=build /app ./
# /certs belongs to the non-root user, so a named volume mounted there is writable by the certificates service.
RUN mkdir -p /certs && chown "$APP_UID" /certs
USER $APP_UID
# Silo-to-silo, client gateway, /healthz and /metrics (OrleansLsn:SiloPort, :GatewayPort, :HttpPort defaults).
EXPOSE 11111 30000 8080
# 200 only while the silo is an active member of its cluster.
HEALTHCHECK --interval=5s --timeout=5s --start-period=120s --retries=3 CMD ["dotnet", "/app/OrleansLsn.Silo.dll", "healthcheck"]
ENTRYPOINT ["dotnet", "/app/OrleansLsn.Silo.dll"]
CMD ["silo"]
